"""Every IPN as it arrived: raw bytes and headers first, the verdict once it has been processed."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from webapp.db import utcnow


class IpnReceipt(SQLModel, table=True):
    __tablename__ = "ipn_receipt"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    source_address: str | None = Field(default=None, max_length=64)
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    body_size: int
    dedupe_key: str = Field(max_length=64, index=True)
    """SHA-256 of the body: the same notification delivered again has the same key."""
    external_order_id: str | None = Field(default=None, max_length=64, index=True)
    provider_status: str | None = Field(default=None, max_length=64)
    verdict: str | None = Field(default=None, max_length=16, index=True)
    """None until processed; then one of `IpnVerdict` (ipn/service.py). `error` is the only one that is tried
    again (at `next_attempt_at`), until it is `parked` for a person to look at."""
    processed_at: datetime | None = None
    attempts: int = 0
    """How many times judging this receipt raised an error."""
    last_error: str | None = Field(default=None, max_length=255)
    """The exception class and where it was raised: never the body or the exception's message."""
    next_attempt_at: datetime | None = None
    reviewed_at: datetime | None = None
    """Set when support has looked at a parked or mismatched receipt ("Mark reviewed")."""
    reviewed_by: str | None = Field(default=None, max_length=320)
    review_note: str | None = None
