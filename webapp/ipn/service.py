"""IPN processing, one committed step at a time: store raw → verify → parse → dedupe → apply → publish.

The raw receipt is committed before anything else, so nothing received is ever lost; a receipt whose
processing was interrupted is processed again by the background loop (`process_pending`), first at start-up.
"""

import hashlib
import json
import logging
from datetime import timedelta
from enum import StrEnum

from litestar.channels import ChannelsPlugin
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.schemas import OrderObject
from webapp.ipn.models import IpnReceipt, utcnow
from webapp.orders.live import publish_change
from webapp.orders.models import Order
from webapp.orders.service import apply_provider_order, lock_order
from webapp.orders.state import Verdict

logger = logging.getLogger(__name__)


class IpnVerdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_STATUS = "unknown_status"
    TOO_LARGE = "too_large"


# What Alix Pay hears back: 2xx stops its retries, anything else asks for another delivery.
HTTP_STATUS = {
    IpnVerdict.APPLIED: 200,
    IpnVerdict.DUPLICATE: 200,
    IpnVerdict.STALE: 200,
    IpnVerdict.UNKNOWN_STATUS: 200,
    IpnVerdict.BAD_SIGNATURE: 400,
    IpnVerdict.MALFORMED: 400,
    IpnVerdict.UNKNOWN_ORDER: 404,
    IpnVerdict.TOO_LARGE: 413,
}
KEPT_HEADERS = ("content-type", "content-length", "user-agent", "x-forwarded-for", "x-request-id")


async def store_raw(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    body: bytes,
    headers: dict[str, str],
    source_address: str | None,
    too_large: bool = False,
) -> int:
    """Commit the receipt exactly as received (an oversized body is kept up to the cap) and return its id."""
    receipt = IpnReceipt(
        body=body,
        body_size=len(body),
        headers={name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS},
        source_address=source_address,
        dedupe_key=hashlib.sha256(body).hexdigest(),
    )
    if too_large:
        receipt.verdict, receipt.processed_at = IpnVerdict.TOO_LARGE.value, utcnow()
    async with db_sessionmaker() as session, session.begin():
        session.add(receipt)
        await session.flush()
        return receipt.id or 0


async def process(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    receipt_id: int,
    *,
    alixpay: AlixPayClient,
    channels: ChannelsPlugin,
) -> IpnVerdict:
    """Decide and record the receipt's verdict; applying it to the order happens in the same transaction."""
    async with db_sessionmaker() as session, session.begin():
        # Locked, so two instances replaying the same pending receipt never both apply it.
        receipt = (await session.exec(select(IpnReceipt).where(IpnReceipt.id == receipt_id).with_for_update())).first()
        if receipt is None:
            raise LookupError(f"no IPN receipt {receipt_id}")
        if receipt.verdict is not None:
            return IpnVerdict(receipt.verdict)
        verdict, order_id = await _judge(session, receipt, alixpay)
        receipt.verdict, receipt.processed_at = verdict.value, utcnow()
    logger.info("IPN receipt %s for %s: %s", receipt_id, receipt.external_order_id, verdict.value)
    if verdict is IpnVerdict.APPLIED and order_id is not None:
        publish_change(channels, order_id)
    return verdict


async def _judge(session: AsyncSession, receipt: IpnReceipt, alixpay: AlixPayClient) -> tuple[IpnVerdict, int | None]:
    try:
        provider = OrderObject.model_validate(json.loads(receipt.body))
    except (ValueError, ValidationError):
        return IpnVerdict.MALFORMED, None
    receipt.external_order_id = provider.external_order_id[:64]
    receipt.provider_status = provider.status[:64]
    if not alixpay.verify_order(provider):
        return IpnVerdict.BAD_SIGNATURE, None
    order_id = (
        await session.exec(select(Order.id).where(Order.external_order_id == provider.external_order_id))
    ).first()
    order = await lock_order(session, order_id) if order_id is not None else None
    if order is None:
        return IpnVerdict.UNKNOWN_ORDER, None
    seen_before = (
        await session.exec(
            select(IpnReceipt.id).where(
                IpnReceipt.dedupe_key == receipt.dedupe_key,
                IpnReceipt.id != receipt.id,
                col(IpnReceipt.verdict).in_([IpnVerdict.APPLIED, IpnVerdict.DUPLICATE, IpnVerdict.STALE]),
            )
        )
    ).first()
    if seen_before is not None:
        return IpnVerdict.DUPLICATE, order.id
    order.last_ipn_at = utcnow()
    applied = await apply_provider_order(session, order, provider, source="ipn", receipt_id=receipt.id)
    if applied is None:
        return IpnVerdict.UNKNOWN_STATUS, order.id
    return {Verdict.APPLIED: IpnVerdict.APPLIED, Verdict.DUPLICATE: IpnVerdict.DUPLICATE}.get(
        applied, IpnVerdict.STALE
    ), order.id


async def process_pending(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    alixpay: AlixPayClient,
    channels: ChannelsPlugin,
    grace: timedelta,
) -> int:
    """Finish receipts that a crash or restart interrupted.

    Only receipts older than `grace` count: a younger one is still being processed by the request that stored it
    (SQLite has no row locks to keep the two apart).
    """
    async with db_sessionmaker() as session:
        pending = (
            await session.exec(
                select(IpnReceipt.id)
                .where(col(IpnReceipt.verdict).is_(None), col(IpnReceipt.received_at) <= utcnow() - grace)
                .order_by(col(IpnReceipt.id))
            )
        ).all()
    for receipt_id in pending:
        await process(db_sessionmaker, receipt_id, alixpay=alixpay, channels=channels)
    return len(pending)
