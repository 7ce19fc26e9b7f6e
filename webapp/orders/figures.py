"""What an order costs and pays, in units, from Alix Pay's order object; and the estimate shown before confirming.

Alix Pay does not say in which unit `fees` are (CONTRACT.md §5). **Decision:** fees are in the order's token
(USDT), charged on top of `tokenTransfer.amount`, so the total taken from the wallet is amount + fees. This module
is the only place that adds them up.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from webapp.alixpay.schemas import CRYPTO_CURRENCY
from webapp.db import utcnow
from webapp.orders.models import Order
from webapp.orders.storage import latest_answered

TOKEN_PLACES = Decimal("0.000001")
"""USDT is shown to 6 decimals (its precision on the networks Alix Pay uses)."""
RATE_FRESH_FOR = timedelta(hours=24)
"""A rate older than this is not used for an estimate."""


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class Figures:
    """Amounts of one order (or one estimate), each with its unit; a missing figure is None."""

    fiat_amount: int
    token: str = CRYPTO_CURRENCY
    token_amount: Decimal | None = None
    rate: Decimal | None = None
    """VND per token."""
    system_fee: Decimal | None = None
    processing_fee: Decimal | None = None

    @property
    def fees(self) -> Decimal | None:
        parts = [fee for fee in (self.system_fee, self.processing_fee) if fee is not None]
        return sum(parts, Decimal(0)) if parts else None

    @property
    def total(self) -> Decimal | None:
        """What the wallet pays: the amount and the fees."""
        if self.token_amount is None:
            return None
        return self.token_amount + (self.fees or Decimal(0))


def order_figures(order: Order) -> Figures:
    return reported_figures(order.fiat_amount, order.provider_order)


def reported_figures(fiat_amount: int, provider_order: dict[str, Any] | None) -> Figures:
    """The figures an Alix Pay order object reports (as stored, `OrderObject.to_wire`) for an order of `fiat_amount`."""
    provider: dict[str, Any] = provider_order or {}
    transfer = provider.get("tokenTransfer") or {}
    fees = provider.get("fees") or {}
    return Figures(
        fiat_amount=fiat_amount,
        token=str(transfer.get("currency") or CRYPTO_CURRENCY),
        token_amount=_decimal(transfer.get("amount")),
        rate=_decimal(transfer.get("price")),
        system_fee=_decimal(fees.get("systemFee")),
        processing_fee=_decimal(fees.get("processingFee")),
    )


async def estimate(reader: AsyncEngine, fiat_amount: int) -> Figures | None:
    """What an order of `fiat_amount` would cost at the rate and fees of Alix Pay's latest answer, if recent.

    `reader` is the `autocommit` engine: one statement, no transaction around it (every review page asks;
    docs/PERFORMANCE.md, order creation).
    """
    latest = await latest_answered(reader, since=utcnow() - RATE_FRESH_FOR)
    if latest is None:
        return None
    known = order_figures(latest)
    if not known.rate:
        return None
    amount = (Decimal(fiat_amount) / known.rate).quantize(TOKEN_PLACES, rounding=ROUND_UP)
    return Figures(fiat_amount, known.token, amount, known.rate, known.system_fee, known.processing_fee)
