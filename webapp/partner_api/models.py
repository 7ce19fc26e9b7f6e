"""What the partner API keeps: API keys, and the answers to requests made with an `Idempotency-Key`.

Keys are stored as hashes only, each with a name, a visible prefix and its last use.
"""

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from webapp.db import utcnow


class PartnerApiKey(SQLModel, table=True):
    __tablename__ = "partner_api_key"

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    name: str = Field(max_length=100)
    """What the partner calls it ("reconciliation job", "staging")."""
    prefix: str = Field(max_length=16, unique=True)
    """The key's first characters, shown on lists and in the audit log to tell keys apart; found by it."""
    key_hash: str = Field(max_length=64)
    """SHA-256 of the whole key, hex. The key itself is shown once, when made, and never stored."""
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    """Refreshed at most once a minute (`keys.py`), so a busy key costs no write per request."""
    revoked_at: datetime | None = None


class IdempotentRequest(SQLModel, table=True):
    """A request made with an `Idempotency-Key`: the same key and body get this answer again, another body a 409."""

    __tablename__ = "partner_idempotent_request"
    __table_args__ = (UniqueConstraint("partner_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    """SHA-256 of the method, path and body as sent."""
    status_code: int
    response: str = Field(sa_column=Column(Text, nullable=False))
    """The answer's JSON, exactly as first sent."""
    created_at: datetime = Field(default_factory=utcnow, index=True)
    """Kept `KEPT_FOR` (24 hours, as Stripe does), then forgotten by the launch-tokens clean-up."""
