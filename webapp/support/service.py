"""Support actions, each recorded in the audit log.

Check status now, re-verify a receipt, send an email again.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.alixpay.client import AlixPayClient
from webapp.auth.session import CurrentUser
from webapp.csvfile import csv_stream
from webapp.db import utcnow
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import assess
from webapp.notifications.models import EmailMessage
from webapp.orders.figures import order_figures
from webapp.orders.models import Order
from webapp.orders.reconcile import reconcile_order
from webapp.orders.state import decide, from_provider
from webapp.orders.statuses import OrderStatus, status_info
from webapp.orders.transitions import StatusChanges, disagreements
from webapp.support.masking import mask_account, mask_email, mask_name
from webapp.support.phrases import DRY_RUN
from webapp.support.search import Console, SearchQuery, every_match


async def order_by_external_id(session: AsyncSession, external_order_id: str) -> Order | None:
    return (await session.exec(select(Order).where(Order.external_order_id == external_order_id))).first()


async def check_status_now(
    order: Order,
    *,
    agent: CurrentUser,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    changes: StatusChanges,
    alixpay: AlixPayClient,
) -> str:
    """The details call through the reconciler and the one owner of status changes; returns the outcome."""
    outcome = await reconcile_order(
        order.id or 0, changes=changes, alixpay=alixpay, source="manual", include_final=True
    )
    result = outcome.value if outcome else "not polled"
    await audit.append(db_sessionmaker, actor=agent.email, action="check_status", order_id=order.id, detail=result)
    return result


@dataclass(frozen=True)
class Reverification:
    """What processing the stored body again would decide: nothing is applied."""

    well_formed: bool
    signature_valid: bool
    disagreements: tuple[str, ...] = ()
    would_be: str = ""
    """applied | duplicate | stale | unknown_status | mismatch | malformed | bad_signature | unknown_order"""


async def reverify_receipt(
    receipt: IpnReceipt, order: Order | None, *, agent: CurrentUser, alixpay: AlixPayClient, db_sessionmaker
) -> Reverification:
    assessment = assess(receipt.body, alixpay)
    provider = assessment.provider
    if assessment.refusal is not None or provider is None:
        result = Reverification(provider is not None, False, would_be=(assessment.refusal or "malformed").value)
    elif order is None:
        result = Reverification(True, True, would_be="unknown_order")
    elif found := disagreements(order, provider):
        result = Reverification(True, True, tuple(found), "mismatch")
    else:
        target = from_provider(provider.status)
        would_be = decide(OrderStatus(order.status), target).value if target else "unknown_status"
        result = Reverification(True, True, would_be=would_be)
    await audit.append(
        db_sessionmaker,
        actor=agent.email,
        action="reverify",
        order_id=order.id if order else None,
        receipt_id=receipt.id,
        detail=DRY_RUN(verdict=result.would_be),
    )
    return result


RESEND_PAUSE = timedelta(minutes=10)
"""After support sends an email again, another resend of it waits this long: a double click, or two agents on
one ticket, send the customer one mail."""


class Resend(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    """Already in the outbox: it goes out on the mailer's next round."""
    TOO_SOON = "too_soon"


async def send_email_again(
    email_id: int, *, agent: CurrentUser, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[Order, Resend] | None:
    """Put an email back in the outbox with a fresh count of tries, whatever became of it (sent, refused, parked).

    None when there is no such email. One in the outbox already, or one sent again less than `RESEND_PAUSE` ago,
    is left as it is.
    """
    async with db_sessionmaker() as session, session.begin():
        message = await session.get(EmailMessage, email_id)
        if message is None:
            return None
        order = await session.get_one(Order, message.order_id)  # an email belongs to its order (foreign key)
        now = utcnow()
        if message.state == "pending":
            return order, Resend.WAITING
        if message.resent_at is not None and now - message.resent_at < RESEND_PAUSE:
            return order, Resend.TOO_SOON
        before = f"{message.kind} email {email_id}: was {message.state} after {message.attempts} tries"
        if message.last_error:
            before += f" ({message.last_error})"
        message.state, message.attempts, message.next_attempt_at, message.resent_at = "pending", 0, now, now
    await audit.append(
        db_sessionmaker, actor=agent.email, action="email_resent", order_id=message.order_id, detail=before
    )
    return order, Resend.QUEUED


CSV_COLUMNS = (
    "created_at",
    "order_id",
    "status",
    "provider_status",
    "reason",
    "amount_vnd",
    "usdt_amount",
    "rate_vnd_per_usdt",
    "fees_usdt",
    "total_usdt",
    "bank",
    "account",
    "recipient",
    "email",
    "transfer_content",
    "tx_hash",
)
"""Times in the console's time zone to the second, with their offset; USDT figures as Alix Pay reported them."""


def csv_row(order: Order, *, revealed: bool, timezone: ZoneInfo) -> list[str]:
    figures = order_figures(order)
    return [
        order.created_at.astimezone(timezone).isoformat(timespec="seconds"),
        order.external_order_id,
        order.status,
        order.provider_status or "",
        failure_reason(order),
        str(order.fiat_amount),
        *(
            "" if value is None else str(value)
            for value in (figures.token_amount, figures.rate, figures.fees, figures.total)
        ),
        order.bank_name,
        order.account_number if revealed else mask_account(order.account_number),
        order.recipient_name if revealed else mask_name(order.recipient_name),
        order.user_email if revealed else mask_email(order.user_email),
        order.transfer_content,
        order.provider_tx_hash or "",
    ]


def failure_reason(order: Order) -> str:
    """Why it failed, as Alix Pay put it (its refusal, or the failed order's description); empty otherwise."""
    if order.rejection_message:
        return order.rejection_message
    if not status_info(order.status).failed:
        return ""
    provider = order.provider_order or {}
    return str(provider.get("description") or provider.get("descriptions") or "")[:500]


async def csv_lines(
    db_sessionmaker: async_sessionmaker[AsyncSession], query: SearchQuery, *, console: Console, revealed: bool
) -> AsyncIterator[str]:
    """The search as CSV, personal data masked unless `revealed`."""

    async def rows() -> AsyncIterator[list[str]]:
        async with db_sessionmaker() as session:
            async for order in every_match(session, query, console=console):
                yield csv_row(order, revealed=revealed, timezone=console.timezone)

    async for line in csv_stream(CSV_COLUMNS, rows()):
        yield line


AUDIT_COLUMNS = ("id", "at", "actor", "action", "order_id", "receipt_id", "reason", "detail", "prev_hash", "hash")


async def audit_csv_lines(db_sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    """The whole log as CSV, oldest first, with the hashes so the export can be checked on its own."""

    async def rows() -> AsyncIterator[list[str]]:
        async with db_sessionmaker() as session:
            for entry in (await session.exec(select(audit.AuditEntry).order_by(col(audit.AuditEntry.id)))).all():
                yield [str(getattr(entry, name) if getattr(entry, name) is not None else "") for name in AUDIT_COLUMNS]

    async for line in csv_stream(AUDIT_COLUMNS, rows()):
        yield line
