"""What support keeps of its own work: who took a problem and how it was resolved, and internal notes."""

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from webapp.db import utcnow


class SupportCase(SQLModel, table=True):
    """A problem of the queue that a person took or resolved, keyed by its kind and the row it is about.

    The problems themselves are read from where they live (a parked receipt, a given-up email, ...): a row here
    exists only once someone acted, so a problem nobody touched costs nothing and clears when the fact clears.
    """

    __tablename__ = "support_case"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_support_case_kind_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    """disagreement | receipt | email | webhook | stuck (`support/queue.py::PROBLEM_KINDS`)"""
    ref: int
    """The id of the row the problem is about: an order event, a receipt, an email, a webhook event, an order."""
    order_id: int | None = Field(default=None, foreign_key="cashout_order.id", index=True)
    assignee: str | None = Field(default=None, max_length=320, index=True)
    assigned_at: datetime | None = None
    resolved_at: datetime | None = Field(default=None, index=True)
    resolved_by: str | None = Field(default=None, max_length=320)
    resolution: str = ""


class SupportNote(SQLModel, table=True):
    """An internal note on an order or on a customer: for agents only, never shown to the customer."""

    __tablename__ = "support_note"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="cashout_order.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    author: str = Field(max_length=320)
    at: datetime = Field(default_factory=utcnow)
    body: str = Field(sa_column=Column(Text, nullable=False))
