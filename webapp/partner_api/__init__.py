"""The partner API (`/api/partner/v1/`): a partner's server reads and reconciles its orders with an API key."""
