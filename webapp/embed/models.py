"""Partners who embed us, the launch tokens they spent, and the webhook events we owe them (an outbox)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from webapp.db import utcnow


class Partner(SQLModel, table=True):
    __tablename__ = "partner"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=40, unique=True)
    """The launch token's `iss` and the `/embed/{slug}/start` path segment."""
    name: str = Field(max_length=100)
    allowed_origins: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Exact origins (`https://app.example.com`) that may frame us and receive our page events."""
    return_urls: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Exact URLs a launch token may name as `return_url` (redirect mode)."""
    logo_url: str | None = Field(default=None, max_length=500)
    primary_color: str = Field(default="#0b57d0", max_length=7)
    theme_mode: str = Field(default="light", max_length=5)
    """light | dark"""
    token_alg: str = Field(max_length=8)
    """EdDSA | RS256 | HS256: the only algorithm accepted for this partner's launch tokens."""
    token_key: str = Field(sa_column=Column(Text, nullable=False))
    """A PEM public key (EdDSA, RS256) or the shared secret (HS256), sealed (`secretbox.py`)."""
    previous_token_alg: str | None = Field(default=None, max_length=8)
    previous_token_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The launch key before the last change, sealed: tokens it signs are accepted until `previous_token_until`."""
    previous_token_until: datetime | None = None
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str = Field(sa_column=Column(Text, nullable=False))
    """Signs webhook events and return-URL parameters; sealed."""
    previous_webhook_secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The webhook secret before the last rotation, sealed: it signs too until `previous_webhook_secret_until`."""
    previous_webhook_secret_until: datetime | None = None
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LaunchTokenUse(SQLModel, table=True):
    """A spent launch token: its `jti` is accepted once per partner (the unique constraint decides races)."""

    __tablename__ = "launch_token_use"
    __table_args__ = (UniqueConstraint("partner_id", "jti"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    jti: str = Field(max_length=200)
    used_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    """After this the token is refused as expired anyway, so the row may be deleted."""


class LaunchTicket(SQLModel, table=True):
    """A launch the partner's server asked for through the partner API, instead of minting a token itself.

    The URL carries the ticket; only its hash is kept. It opens one session (its `jti` is `ticket:<id>`, spent like
    a token's) within minutes.
    """

    __tablename__ = "launch_ticket"

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    ticket_hash: str = Field(max_length=64, unique=True)
    claims: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """What the launch asks for, as a token's claims (`sub`, `email`, `email_verified`, `amount`, …)."""
    expires_at: datetime = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)


class WebhookEvent(SQLModel, table=True):
    """One event to deliver to a partner's server, written in the transaction of the status change it reports."""

    __tablename__ = "webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=40, unique=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    order_id: int = Field(foreign_key="cashout_order.id", index=True)
    type: str = Field(max_length=32)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    """The exact JSON body sent (and signed) on every attempt."""
    state: str = Field(default="pending", max_length=16, index=True)
    """pending | delivered | gave_up"""
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=utcnow, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="webhook_event.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    """Indexed for the activity charts (failed deliveries per day)."""
    status_code: int | None = None
    error: str = Field(default="", max_length=200)
    """What went wrong, short (a connection error's class, a timeout); never the response body."""
    duration_ms: int = 0
