"""Partners embed the cash-out flow in their own apps: launch tokens, hosted pages, parent-page events, webhooks."""
