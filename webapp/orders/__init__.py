"""Cash-out orders: the form, creation at Alix Pay, the forward-only state machine, live status pages."""
