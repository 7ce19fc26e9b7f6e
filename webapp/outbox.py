"""What every outbox (partner webhooks, emails) shares: when to try again, and claiming due rows safely.

Rows are claimed with `FOR UPDATE SKIP LOCKED` and a short lease, so several instances never send one row at
once, and an instance that dies mid-send only delays it until the lease runs out.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import utcnow


class OutboxRow(Protocol):
    id: int | None
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class DeliveryPolicy:
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(days=3)
    lease: timedelta = timedelta(seconds=60)
    """How long a claimed row is left alone while one instance sends it."""
    batch: int = 20
    park_after: int = 5
    """Tries after which a row whose handling raised (a bug on our side, not the other side's answer) is parked
    for a person instead of being tried again."""

    def next_attempt(self, row: OutboxRow, now: datetime, retry_after: timedelta | None = None) -> datetime | None:
        """When to try again (`retry_after` if the other side said, else doubling delays), or None to give up."""
        backoff = min(self.base_delay * 2 ** max(row.attempts - 1, 0), self.max_delay)
        at = now + (backoff if retry_after is None else retry_after)
        return None if at > row.created_at + self.give_up_after else at


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession], model: type[SQLModel], policy: DeliveryPolicy
) -> list[int]:
    """Lease the due `pending` rows of `model` to this instance and return their ids, oldest due first."""
    now = utcnow()
    next_attempt_at = col(model.next_attempt_at)  # type: ignore[attr-defined]
    async with sessionmaker() as session, session.begin():
        due = (
            await session.exec(
                select(model)
                .where(model.state == "pending", next_attempt_at <= now)  # type: ignore[attr-defined]
                .order_by(next_attempt_at)
                .limit(policy.batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in due:
            row.next_attempt_at = now + policy.lease  # type: ignore[attr-defined]
        return [row.id or 0 for row in due]  # type: ignore[attr-defined]
