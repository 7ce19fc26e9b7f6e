"""Self-hostable cash-out dashboard for the Alix Pay Remittance API."""

__version__ = "0.1.0"
