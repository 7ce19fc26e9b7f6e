"""Orders and their status transitions (tables). Other features are referenced by foreign key only."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, Index, and_, true
from sqlmodel import Field, SQLModel, col

from webapp.db import utcnow
from webapp.orders.status_card import short_reference
from webapp.orders.statuses import FINAL_STATUSES


class Order(SQLModel, table=True):
    __tablename__ = "cashout_order"
    __table_args__ = (
        # Prefix searches (`LIKE 'abc%'`) by support use these on PostgreSQL whatever the database's collation.
        Index("ix_cashout_order_user_email_prefix", "user_email", postgresql_ops={"user_email": "varchar_pattern_ops"}),
        Index(
            "ix_cashout_order_external_order_id_prefix",
            "external_order_id",
            postgresql_ops={"external_order_id": "varchar_pattern_ops"},
        ),
        Index("ix_cashout_order_created_at_id", "created_at", "id"),
        Index("ix_cashout_order_partner_reference", "partner_id", "partner_reference"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_order_id: str = Field(max_length=64, unique=True, index=True)
    submission_id: str = Field(max_length=64, unique=True)
    """The form's one-time token: a double click or a re-posted form finds the same order."""
    user_id: int = Field(foreign_key="user_account.id", index=True)
    user_email: str = Field(max_length=320, index=True)
    status: str = Field(max_length=32, index=True)
    provider_status: str | None = Field(default=None, max_length=64)
    """The last status Alix Pay reported, as received (also when we do not know it)."""
    fiat_amount: int
    bank_bin: str = Field(max_length=8)
    bank_code: str = Field(max_length=32)
    bank_name: str = Field(max_length=255)
    account_number: str = Field(max_length=19)
    account_tail: str = Field(default="", max_length=4, index=True)
    """The account's last four digits: what a customer quotes to support, and the indexed way to find them."""
    recipient_name: str = Field(max_length=50)
    transfer_content: str = Field(max_length=19, index=True)
    locale: str = Field(default="en", max_length=8)
    rejection_message: str | None = None
    provider_order: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """The last verified order object from Alix Pay (amounts, fees, token transfer)."""
    provider_tx_hash: str | None = Field(default=None, max_length=128, index=True)
    """Alix Pay's references, copied out of `provider_order` so support can search them."""
    provider_content: str | None = Field(default=None, max_length=64, index=True)
    save_recipient: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """The person left "Save this recipient" ticked: once paid out, the recipient is kept (`orders/recipients.py`)."""
    partner_id: int | None = Field(default=None, foreign_key="partner.id", index=True)
    """The partner whose hosted page placed the order (their server gets its webhooks)."""
    partner_user_id: str | None = Field(default=None, max_length=200)
    """The partner's own id for the person (the launch token's `sub`)."""
    partner_reference: str | None = Field(default=None, max_length=64)
    """The partner's own reference for the cash-out (the launch token's `reference`), in its webhooks."""
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_ipn_at: datetime | None = None
    last_polled_at: datetime | None = None

    @property
    def reference(self) -> str:
        return short_reference(self.external_order_id)


def stuck(quiet_for: timedelta, now: datetime) -> ColumnElement[bool]:
    """An order is stuck when it is not final and nothing changed it for longer than `quiet_for`."""
    return and_(
        col(Order.status).not_in([status.value for status in FINAL_STATUSES]), col(Order.updated_at) < now - quiet_for
    )


class OrderTransition(SQLModel, table=True):
    __tablename__ = "order_transition"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="cashout_order.id", index=True)
    from_status: str = Field(max_length=32)
    to_status: str = Field(max_length=32)
    source: str = Field(max_length=16)
    """create | ipn | poll | manual"""
    at: datetime = Field(default_factory=utcnow)
    receipt_id: int | None = Field(default=None, foreign_key="ipn_receipt.id")
    note: str = ""


class OrderEvent(SQLModel, table=True):
    """Something that happened to an order without changing its status, e.g. a signed answer that disagreed with it.

    Kept beside the transitions so the order's history (and support's timeline) shows it.
    """

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="cashout_order.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32, index=True)
    """mismatch | disagreement | poll | create_request | create_answer"""
    source: str = Field(max_length=16)
    """create | ipn | poll | manual"""
    receipt_id: int | None = Field(default=None, foreign_key="ipn_receipt.id")
    detail: str = ""
