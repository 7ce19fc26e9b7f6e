"""Cash-out units of work: store the order before calling Alix Pay, store the verified answer, apply statuses."""

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient, CashoutOrder, alixpay_lang
from webapp.alixpay.errors import AlixPayBadSignature, AlixPayOrderNotFound, AlixPayOutcomeUnknown, AlixPayRejected
from webapp.alixpay.schemas import OrderObject
from webapp.auth.session import CurrentUser
from webapp.banks.directory import alix_bank_code
from webapp.logs import bind_order
from webapp.metrics import CREATIONS
from webapp.orders.forms import Cashout
from webapp.orders.models import Order, OrderEvent, OrderTransition, loaded
from webapp.orders.statuses import OrderStatus
from webapp.orders.transitions import StatusChanges

logger = logging.getLogger(__name__)
for _outcome in ("created", "rejected", "unknown"):  # exported from the start, at 0
    CREATIONS.labels(_outcome)


@dataclass(frozen=True)
class Review:
    """What the person confirmed, kept in their session between the review page and Confirm."""

    submission_id: str
    cashout: Cashout
    transfer_content: str


async def create_cashout(
    *,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    user: CurrentUser,
    review: Review,
    locale: str,
) -> Order:
    """Create the order once: committed as CREATING before Alix Pay is called, so nothing is ever created twice.

    A second submission of the same review finds the first order. A timeout or 5xx is resolved at once with the
    details call when it can be, else leaves the order UNKNOWN for the reconciler; a rejection leaves it
    REJECTED with Alix Pay's message in the person's language.
    """
    cashout = review.cashout
    async with changes.db_sessionmaker() as session:
        existing = (await session.exec(select(Order).where(Order.submission_id == review.submission_id))).first()
        if existing is not None:
            return existing
        order = Order(
            external_order_id=str(uuid.uuid4()),
            submission_id=review.submission_id,
            user_id=user.id,
            user_email=user.email,
            status=OrderStatus.CREATING.value,
            fiat_amount=cashout.fiat_amount,
            bank_bin=cashout.bank.bin,
            bank_code=alix_bank_code(cashout.bank, alixpay.bank_code_style),
            bank_name=cashout.bank.short_name,
            account_number=cashout.account_number,
            account_tail=cashout.account_number[-4:],
            recipient_name=cashout.recipient_name,
            transfer_content=review.transfer_content,
            locale=locale,
            partner_id=user.partner_id,
            partner_user_id=user.partner_user_id,
        )
        session.add(order)
        try:
            await session.flush()
            summary = f"{order.fiat_amount} VND to {order.bank_code}, content {order.transfer_content}, lang {locale}"
            session.add(OrderEvent(order_id=order.id or 0, kind="create_request", source="create", detail=summary))
            await session.commit()
        except IntegrityError:  # the same submission raced us: the other request owns the order
            await session.rollback()
            return (await session.exec(select(Order).where(Order.submission_id == review.submission_id))).one()

    bind_order(order.external_order_id)
    request = CashoutOrder(
        external_order_id=order.external_order_id,
        user_email=user.email,
        fiat_amount=cashout.fiat_amount,
        bank_code=order.bank_code,
        account_number=cashout.account_number,
        recipient_name=cashout.recipient_name,
        transfer_content=review.transfer_content,
    )
    provider: OrderObject | None = None
    outcome = OrderStatus.UNKNOWN
    note = ""
    try:
        provider = await alixpay.create_cashout_or_resolve(request, lang=alixpay_lang(locale))
    except AlixPayOrderNotFound:  # the create may still be on its way: only the reconciler may give up on it
        note = "create outcome unknown; details did not know the order yet"
    except AlixPayRejected as rejection:
        outcome, note = OrderStatus.REJECTED, rejection.message
    except (AlixPayOutcomeUnknown, AlixPayBadSignature) as unknown:
        logger.warning("order %s: create outcome unknown (%s)", order.external_order_id, unknown)
        note = type(unknown).__name__

    CREATIONS.labels("created" if provider else "rejected" if outcome is OrderStatus.REJECTED else "unknown").inc()
    async with changes.unit() as change:
        order = await change.lock(order.id or 0) or order
        answer = f"Alix Pay accepted it: {provider.status[:64]}" if provider else f"{outcome.value}: {note}"
        change.record(order, "create_answer", answer[:500], source="create")
        if provider is not None:
            await change.apply_provider_order(order, provider, source="create")
        else:
            await change.apply_status(order, outcome, source="create", note=note)
            if outcome is OrderStatus.REJECTED:
                change.update(order, rejection_message=note)
    return order


async def order_for_user(session: AsyncSession, external_order_id: str, user: CurrentUser) -> Order | None:
    """The order if it is this person's; any other id is as good as absent (a 404, never a 403)."""
    return (
        await session.exec(select(Order).where(Order.external_order_id == external_order_id, Order.user_id == user.id))
    ).first()


@dataclass(frozen=True)
class OrderHistory:
    """An order with what its page shows of its past: every transition, and the IPNs flagged as not matching it."""

    order: Order
    transitions: list[OrderTransition]
    flags: list[OrderEvent]


FLAG_KIND = "mismatch"
_ORDER, _TRANSITION, _EVENT = Order.__table__, OrderTransition.__table__, OrderEvent.__table__  # type: ignore[attr-defined]
_OF_TRANSITION = "transition_"
OWN_ORDER_WITH_TRANSITIONS = (
    sa_select(
        *_ORDER.c,
        *(column.label(_OF_TRANSITION + column.name) for column in _TRANSITION.c),
        sa_select(func.count())
        .where(_EVENT.c.order_id == _ORDER.c.id, _EVENT.c.kind == FLAG_KIND)
        .scalar_subquery()
        .label("flag_count"),
    )
    .select_from(_ORDER.outerjoin(_TRANSITION, _TRANSITION.c.order_id == _ORDER.c.id))
    .where(_ORDER.c.external_order_id == bindparam("external_order_id"), _ORDER.c.user_id == bindparam("user_id"))
    .order_by(_TRANSITION.c.id)
)
"""Built once (a live order's page draws it after every change): the order and its transitions in one round trip,
with the count of its flags, which are rare and read by a second statement only when there are some."""
FLAGS = (
    sa_select(_EVENT)
    .where(_EVENT.c.order_id == bindparam("order_id"), _EVENT.c.kind == FLAG_KIND)
    .order_by(_EVENT.c.id)
)


async def own_order_history(reader: AsyncEngine, external_order_id: str, user: CurrentUser) -> OrderHistory | None:
    """The person's order and its history, or None when it is not theirs (as good as absent: a 404).

    `reader` is an `autocommit` engine: no transaction is opened around the read (flags, read by a second
    statement only when there are some, can only have grown since the first).
    """
    async with reader.connect() as connection:
        rows = (
            await connection.execute(
                OWN_ORDER_WITH_TRANSITIONS, {"external_order_id": external_order_id, "user_id": user.id}
            )
        ).all()
        if not rows:
            return None
        first = rows[0]._mapping
        order = loaded(Order, {column.name: first[column] for column in _ORDER.c})
        flags = []
        if first["flag_count"]:
            flags = [
                loaded(OrderEvent, row._mapping) for row in await connection.execute(FLAGS, {"order_id": order.id})
            ]
    transitions = [
        loaded(OrderTransition, {column.name: row._mapping[_OF_TRANSITION + column.name] for column in _TRANSITION.c})
        for row in rows
        if row._mapping[_OF_TRANSITION + "id"] is not None
    ]
    return OrderHistory(order, transitions, flags)


async def orders_page(session: AsyncSession, user: CurrentUser, *, page: int, per_page: int) -> tuple[list[Order], int]:
    query = select(Order).where(Order.user_id == user.id)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (
        await session.exec(
            query.order_by(col(Order.created_at).desc(), col(Order.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return list(rows), total
