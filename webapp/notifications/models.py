"""The email outbox: one row per mail owed, written in the transaction of the status change it reports."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from webapp.db import utcnow


class EmailMessage(SQLModel, table=True):
    __tablename__ = "email_message"
    __table_args__ = (UniqueConstraint("order_id", "kind", name="uq_email_message_order_kind"),)
    """One mail per order and kind, whatever arrives twice."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="cashout_order.id", index=True)
    kind: str = Field(max_length=16)
    """placed | paid_out | done | failed (`notifications/kinds.py`)"""
    status: str = Field(max_length=32)
    """The status whose arrival the mail reports."""
    recipient: str = Field(max_length=320)
    locale: str = Field(max_length=8)
    state: str = Field(default="pending", max_length=16, index=True)
    """pending | sent | opted_out | rejected | gave_up | parked (could not be built: waits for a person)"""
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=utcnow, index=True)
    last_error: str = Field(default="", max_length=200)
    """The last failure, short (an SMTP code and class, a connection error); never the mail."""
    subject: str = Field(default="", max_length=200)
    """As sent, in the person's language (support's timeline shows it)."""
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    resent_at: datetime | None = None
    """When support last asked for it again (a resend is refused for a while after: `support/service.py`)."""
