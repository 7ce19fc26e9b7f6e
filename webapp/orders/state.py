"""The forward-only order state machine: pure, no I/O, exhaustively tested.

Ranks and finality come from the one status table (`statuses.py`).
"""

from enum import StrEnum

from webapp.alixpay.statuses import parse_status
from webapp.orders.statuses import OrderStatus, status_info


class Verdict(StrEnum):
    """What became of a status Alix Pay reported, by whatever path it came (create answer, IPN, poll).

    `decide` answers the first three; an order object that contradicts the order, or names a status we do not
    know, is never applied (`OrderUnit.apply_provider_order`). The IPN intake adds its own words for deliveries
    it could not judge this far (`ipn/service.py`).
    """

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN_STATUS = "unknown_status"
    MISMATCH = "mismatch"


def decide(current: OrderStatus, target: OrderStatus) -> Verdict:
    """Whether moving `current` → `target` is applied, a duplicate, or stale (and ignored).

    Never backwards; a final status is final; skipping ahead is fine; REJECTED only before Alix Pay has the order;
    UNKNOWN only from CREATING.
    """
    if target is current:
        return Verdict.DUPLICATE
    if status_info(current).final:
        return Verdict.STALE
    if target is OrderStatus.CREATING:
        return Verdict.STALE
    if target is OrderStatus.UNKNOWN:
        return Verdict.APPLIED if current is OrderStatus.CREATING else Verdict.STALE
    if target is OrderStatus.REJECTED:
        return Verdict.APPLIED if status_info(current).rank == 0 else Verdict.STALE
    return Verdict.APPLIED if status_info(target).rank > status_info(current).rank else Verdict.STALE


def from_provider(raw: str | None) -> OrderStatus | None:
    """A provider status string as ours, or None when unknown (stored as received, never applied)."""
    status = parse_status(raw)
    return OrderStatus(status.value) if status is not None else None
