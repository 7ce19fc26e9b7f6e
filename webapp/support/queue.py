"""The queue of what needs a person: each problem read from where it lives, with who took it and how it ended.

A problem is a row in its own table that a person must look at (a receipt that disagreed or could not be
processed, a status check that disagreed, an undelivered email or partner webhook, a quiet order). Taking
and resolving one writes a `SupportCase`; the problem leaves the queue when it is resolved, or when the fact
itself clears (the email is sent again, the order moves on).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.db import utcnow
from webapp.embed.models import WebhookEvent
from webapp.i18n import N_
from webapp.ipn.models import IpnReceipt
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order, OrderEvent, stuck
from webapp.support.models import SupportCase
from webapp.support.timeline import EMAIL_ATTENTION, RECEIPT_ATTENTION

PROBLEM_KINDS = {
    "disagreement": N_("Status check disagreed"),
    "receipt": N_("Notification needs a person"),
    "email": N_("Email not delivered"),
    "webhook": N_("Partner webhook not delivered"),
    "stuck": N_("Order stuck"),
}
MISMATCH_LABEL = N_("Notification disagreed with the order")
QUEUE_LIMIT = 100
"""Per kind: a flood of one kind cannot hide the others."""
WHO = ("all", "mine", "unassigned")


@dataclass(frozen=True)
class Problem:
    kind: str
    ref: int
    since: datetime
    """When the problem arose (its age is counted from here)."""
    order: Order | None
    detail: str
    """A short fact in the log's words (a verdict, an error, a state), shown as it is."""
    case: SupportCase | None

    @property
    def title(self) -> str:
        if self.kind == "receipt" and self.detail.startswith("mismatch"):
            return MISMATCH_LABEL
        return PROBLEM_KINDS[self.kind]

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.ref}"


@dataclass(frozen=True)
class Source:
    """Where one kind of problem lives: its row, the row's time, its order, and what makes it a problem."""

    table: Any
    since: Any
    order_link: Callable[[], ColumnElement[bool]] | None
    """How its order is found (None: the row is the order)."""
    condition: Callable[[timedelta, datetime], ColumnElement[bool]]
    detail: Callable[[Any], str]


SOURCES = {
    "disagreement": Source(
        OrderEvent,
        OrderEvent.at,
        lambda: col(Order.id) == OrderEvent.order_id,
        lambda stuck_after, now: col(OrderEvent.kind) == "disagreement",
        lambda event: event.detail,
    ),
    "receipt": Source(
        IpnReceipt,
        IpnReceipt.received_at,
        lambda: col(Order.external_order_id) == IpnReceipt.external_order_id,
        lambda stuck_after, now: col(IpnReceipt.verdict).in_(RECEIPT_ATTENTION),
        lambda receipt: " ".join(filter(None, (receipt.verdict, receipt.last_error))),
    ),
    "email": Source(
        EmailMessage,
        EmailMessage.created_at,
        lambda: col(Order.id) == EmailMessage.order_id,
        lambda stuck_after, now: col(EmailMessage.state).in_(EMAIL_ATTENTION),
        lambda message: " ".join(filter(None, (message.kind, message.state, message.last_error))),
    ),
    "webhook": Source(
        WebhookEvent,
        WebhookEvent.created_at,
        lambda: col(Order.id) == WebhookEvent.order_id,
        lambda stuck_after, now: col(WebhookEvent.state) == "gave_up",
        lambda event: f"{event.type} {event.event_id}",
    ),
    "stuck": Source(
        Order,
        Order.updated_at,
        None,
        stuck,
        lambda order: order.status,
    ),
}


def _case_join(kind: str, table: Any) -> ColumnElement[bool]:
    return and_(col(SupportCase.kind) == kind, col(SupportCase.ref) == table.id)


async def _problems_of(
    session: AsyncSession, kind: str, *, stuck_after: timedelta, now: datetime, where: list[ColumnElement[bool]]
) -> list[Problem]:
    source = SOURCES[kind]
    if source.order_link is None:
        statement = select(Order, SupportCase)
    else:
        statement = select(source.table, SupportCase, Order).outerjoin(Order, source.order_link())
    statement = (
        statement.outerjoin(SupportCase, _case_join(kind, source.table))
        .where(source.condition(stuck_after, now), *where)
        .order_by(col(source.since).desc())
        .limit(QUEUE_LIMIT)
    )
    problems = []
    for row in (await session.exec(statement)).all():
        item, case, order = (row[0], row[1], row[0]) if source.order_link is None else row
        since = getattr(item, source.since.key)
        problems.append(Problem(kind, item.id, since, order, source.detail(item), case))
    return problems


async def open_problems(
    session: AsyncSession, *, stuck_after: timedelta, who: str = "all", agent: str = "", now: datetime | None = None
) -> list[Problem]:
    """Every unresolved problem, newest first; `who` narrows to the agent's own ("mine") or nobody's ("unassigned")."""
    now = now or datetime.now(UTC)
    where: list[ColumnElement[bool]] = [col(SupportCase.resolved_at).is_(None)]
    if who == "mine":
        where.append(col(SupportCase.assignee) == agent)
    elif who == "unassigned":
        where.append(or_(col(SupportCase.id).is_(None), col(SupportCase.assignee).is_(None)))
    found = [
        problem
        for kind in SOURCES
        for problem in await _problems_of(session, kind, stuck_after=stuck_after, now=now, where=where)
    ]
    return sorted(found, key=lambda problem: problem.since, reverse=True)


async def find_problem(session: AsyncSession, kind: str, ref: int, *, stuck_after: timedelta) -> Problem | None:
    """The problem `kind`/`ref` if it is one (resolved or not); None for anything else."""
    if kind not in SOURCES:
        return None
    source = SOURCES[kind]
    where = [col(source.table.id) == ref]
    found = await _problems_of(session, kind, stuck_after=stuck_after, now=datetime.now(UTC), where=where)
    return found[0] if found else None


async def _save_case(
    db_sessionmaker: async_sessionmaker[AsyncSession], problem: Problem, change: Callable[[SupportCase], None]
) -> None:
    """Create or change the problem's case; two agents acting at once both land (the loser retries on the row)."""
    for attempt in range(2):
        try:
            async with db_sessionmaker() as session, session.begin():
                statement = select(SupportCase).where(SupportCase.kind == problem.kind, SupportCase.ref == problem.ref)
                case = (await session.exec(statement)).first()
                if case is None:
                    order_id = problem.order.id if problem.order else None
                    case = SupportCase(kind=problem.kind, ref=problem.ref, order_id=order_id)
                    session.add(case)
                change(case)
                if problem.kind == "receipt" and case.resolved_at is not None:
                    await _stamp_receipt(session, problem.ref, case)
            return
        except IntegrityError:
            if attempt:
                raise


async def _stamp_receipt(session: AsyncSession, receipt_id: int, case: SupportCase) -> None:
    """The receipt shows its review on the timeline ("Reviewed by …"): the case's resolution, copied."""
    receipt = await session.get(IpnReceipt, receipt_id)
    if receipt is not None:
        receipt.reviewed_at, receipt.reviewed_by, receipt.review_note = (
            case.resolved_at,
            case.resolved_by,
            case.resolution,
        )


async def assign(
    db_sessionmaker: async_sessionmaker[AsyncSession], problem: Problem, *, agent: str, to: str | None
) -> None:
    """Take the problem (`to` = the agent) or give it back (`to` = None); audited."""

    def change(case: SupportCase) -> None:
        case.assignee, case.assigned_at = to, utcnow() if to else None

    await _save_case(db_sessionmaker, problem, change)
    await audit.append(
        db_sessionmaker,
        actor=agent,
        action="case_taken" if to else "case_released",
        order_id=problem.order.id if problem.order else None,
        detail=f"{problem.kind} {problem.ref}",
    )


async def resolve(
    db_sessionmaker: async_sessionmaker[AsyncSession], problem: Problem, *, agent: str, note: str
) -> None:
    """Close the problem with the agent's note (written to the audit log as the reason)."""

    def change(case: SupportCase) -> None:
        case.resolved_at, case.resolved_by, case.resolution = utcnow(), agent, note

    await _save_case(db_sessionmaker, problem, change)
    await audit.append(
        db_sessionmaker,
        actor=agent,
        action="case_resolved",
        order_id=problem.order.id if problem.order else None,
        receipt_id=problem.ref if problem.kind == "receipt" else None,
        reason=note,
        detail=f"{problem.kind} {problem.ref}: {problem.detail}"[:500],
    )
