"""Saved recipients: the bank accounts a person was paid out to, kept so the next cash-out is one click.

A recipient is kept when its cash-out is paid out (never when it fails), unless the person unticked "Save this
recipient" on the review page. One row per person, bank and account: paying the same account again refreshes it,
it never adds a twin. Deleting one never touches an order. A partner's embedded user is another person (another
`user_account` row), so what they keep there stays apart from the person's own sign-in.
"""

from datetime import datetime

from sqlalchemy import Insert, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import DIALECTS, dialect_insert, utcnow
from webapp.orders.events import StatusChanged, UnitWriter
from webapp.orders.forms import mask_account

MAX_LABEL_CHARS = 40


class SavedRecipient(SQLModel, table=True):
    __tablename__ = "saved_recipient"
    __table_args__ = (UniqueConstraint("user_id", "bank_bin", "account_number", name="uq_saved_recipient_account"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    bank_bin: str = Field(max_length=8)
    bank_name: str = Field(max_length=255)
    account_number: str = Field(max_length=19)
    recipient_name: str = Field(max_length=50)
    label: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    """The person's own name for it ("Mum")."""
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime = Field(default_factory=utcnow)

    @property
    def masked_account(self) -> str:
        return mask_account(self.account_number)


def _upsert(dialect: str) -> Insert:
    statement = dialect_insert(dialect)(SavedRecipient.__table__)  # type: ignore[arg-type]
    return statement.on_conflict_do_update(
        index_elements=["user_id", "bank_bin", "account_number"],
        set_={"last_used_at": statement.excluded.last_used_at, "recipient_name": statement.excluded.recipient_name},
    )


KEEP = {dialect: _upsert(dialect) for dialect in DIALECTS}
"""Built once per dialect: an insert that refreshes the row already kept for the account (no twin, no error)."""


async def keep_recipient(change: StatusChanged, unit: UnitWriter) -> None:
    """A status subscriber: a cash-out just paid out keeps its recipient, unless the person said not to.

    Once, when it is first paid out: its later statuses (the token transfer, success) neither write the row again
    nor bring back a recipient the person deleted meanwhile.
    """
    order = change.order
    if not order.save_recipient or not change.pays_out:
        return
    now = utcnow()
    unit.add(
        KEEP[unit.sql.dialect],
        {
            "user_id": order.user_id,
            "bank_bin": order.bank_bin,
            "bank_name": order.bank_name,
            "account_number": order.account_number,
            "recipient_name": order.recipient_name,
            "label": None,
            "created_at": now,
            "last_used_at": now,
        },
    )


async def saved_recipients(session: AsyncSession, user_id: int) -> list[SavedRecipient]:
    """The person's recipients, the most recently paid first."""
    statement = (
        select(SavedRecipient)
        .where(SavedRecipient.user_id == user_id)
        .order_by(col(SavedRecipient.last_used_at).desc(), col(SavedRecipient.id).desc())
    )
    return list((await session.exec(statement)).all())


async def own_recipient(session: AsyncSession, recipient_id: int, user_id: int) -> SavedRecipient | None:
    """The person's recipient, or None: another person's is as good as absent."""
    recipient = await session.get(SavedRecipient, recipient_id)
    return recipient if recipient is not None and recipient.user_id == user_id else None
