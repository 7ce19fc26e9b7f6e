"""Cash-out units of work: store the order before calling Alix Pay, store the verified answer, apply statuses."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient, alixpay_lang
from webapp.alixpay.errors import AlixPayBadSignature, AlixPayOrderNotFound, AlixPayOutcomeUnknown, AlixPayRejected
from webapp.alixpay.schemas import OrderObject
from webapp.auth.session import CurrentUser
from webapp.banks.directory import alix_bank_code
from webapp.db import utcnow
from webapp.logs import bind_order
from webapp.metrics import CREATIONS
from webapp.orders import phrases
from webapp.orders.forms import Cashout
from webapp.orders.models import Order
from webapp.orders.statuses import OrderStatus
from webapp.orders.storage import insert_order
from webapp.orders.transitions import StatusChanges

logger = logging.getLogger(__name__)
for _outcome in ("created", "rejected", "unknown"):  # exported from the start, at 0
    CREATIONS.labels(_outcome)


async def create_cashout(
    *,
    engine: AsyncEngine,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    user: CurrentUser,
    cashout: Cashout,
    locale: str,
) -> Order:
    """Create the order once: committed as CREATING before Alix Pay is called, so nothing is ever created twice.

    A second submission of the same cash-out finds the first order. A timeout or 5xx is resolved at once with the
    details call when it can be, else leaves the order UNKNOWN for the reconciler; a rejection leaves it
    REJECTED with Alix Pay's message in the person's language.
    """
    bank_code = alix_bank_code(cashout.bank, alixpay.bank_code_style)
    order, placed_now = await _place_once(engine, stored_order(cashout, user, locale, bank_code))
    if not placed_now:
        return order
    bind_order(order.external_order_id)
    provider, outcome, note = await _ask_alix_pay(alixpay, order)
    CREATIONS.labels("created" if provider else "rejected" if outcome is OrderStatus.REJECTED else "unknown").inc()
    async with changes.unit() as change:
        order = await change.lock(order.id or 0) or order
        answer = phrases.ACCEPTED(status=provider.status[:64]) if provider else f"{outcome.value}: {note}"
        change.record(order, "create_answer", answer[:500], source="create")
        if provider is not None:
            await change.apply_provider_order(order, provider, source="create")
        else:
            await change.apply_status(order, outcome, source="create", note=note)
            if outcome is OrderStatus.REJECTED:
                change.update(order, rejection_message=note)
    return order


def stored_order(cashout: Cashout, user: CurrentUser, locale: str, bank_code: str) -> Order:
    """The checked cash-out as the order we store (CREATING until Alix Pay answers)."""
    return Order(
        external_order_id=str(uuid.uuid4()),
        submission_id=cashout.submission_id,
        user_id=user.id,
        user_email=user.email,
        status=OrderStatus.CREATING.value,
        fiat_amount=cashout.fiat_amount,
        bank_bin=cashout.bank.bin,
        bank_code=bank_code,
        bank_name=cashout.bank.short_name,
        account_number=cashout.account_number,
        account_tail=cashout.account_number[-4:],
        recipient_name=cashout.recipient_name,
        transfer_content=cashout.transfer_content,
        locale=locale,
        save_recipient=cashout.save_recipient,
        partner_id=user.partner_id,
        partner_user_id=user.partner_user_id,
        partner_reference=user.partner_reference,
    )


async def _place_once(engine: AsyncEngine, order: Order) -> tuple[Order, bool]:
    """Commit the order as CREATING, or find the one its submission already placed: (the order, placed now)."""
    summary = phrases.CREATE_REQUEST(
        amount=order.fiat_amount, bank=order.bank_code, content=order.transfer_content, lang=order.locale
    )
    event = {"kind": "create_request", "source": "create", "detail": summary, "receipt_id": None, "at": utcnow()}
    return await insert_order(engine, order, event)


async def _ask_alix_pay(alixpay: AlixPayClient, order: Order) -> tuple[OrderObject | None, OrderStatus, str]:
    """Alix Pay's order object, or the status the answer leaves the order in and why."""
    try:
        return (
            await alixpay.create_cashout_or_resolve(order, lang=alixpay_lang(order.locale)),
            OrderStatus.UNKNOWN,
            "",
        )
    except AlixPayOrderNotFound:  # the create may still be on its way: only the reconciler may give up on it
        return None, OrderStatus.UNKNOWN, phrases.OUTCOME_UNKNOWN()
    except AlixPayRejected as rejection:
        return None, OrderStatus.REJECTED, rejection.message
    except (AlixPayOutcomeUnknown, AlixPayBadSignature) as unknown:
        logger.warning("order %s: create outcome unknown (%s)", order.external_order_id, unknown)
        return None, OrderStatus.UNKNOWN, type(unknown).__name__


async def order_for_user(session: AsyncSession, external_order_id: str, user: CurrentUser) -> Order | None:
    """The order if it is this person's; any other id is as good as absent (a 404, never a 403)."""
    return (
        await session.exec(select(Order).where(Order.external_order_id == external_order_id, Order.user_id == user.id))
    ).first()
