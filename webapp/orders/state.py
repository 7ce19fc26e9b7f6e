"""The forward-only order state machine: pure, no I/O, exhaustively tested.

Our own statuses surround the contract's: CREATING (stored, Alix Pay not yet asked), UNKNOWN (asked, answer
lost: only the details call may resolve it) and REJECTED (Alix Pay refused the create; nothing exists there).
"""

from enum import StrEnum

from webapp.alixpay.statuses import AlixStatus, parse_status, progress


class OrderStatus(StrEnum):
    CREATING = "CREATING"
    UNKNOWN = "UNKNOWN"
    REJECTED = "REJECTED"
    AWAITING_PAYMENT = AlixStatus.AWAITING_PAYMENT.value
    PAYMENT_COMPLETED = AlixStatus.PAYMENT_COMPLETED.value
    PROCESSING_TOKEN_TRANSFER = AlixStatus.PROCESSING_TOKEN_TRANSFER.value
    SUCCESS = AlixStatus.SUCCESS.value
    FAIL = AlixStatus.FAIL.value
    ERROR = AlixStatus.ERROR.value


class Verdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


LOCAL_RANK = {OrderStatus.CREATING: 0, OrderStatus.UNKNOWN: 0}
FINAL = frozenset({OrderStatus.REJECTED, OrderStatus.SUCCESS, OrderStatus.FAIL, OrderStatus.ERROR})


def is_final(status: OrderStatus) -> bool:
    return status in FINAL


def rank(status: OrderStatus) -> int:
    if status in LOCAL_RANK:
        return LOCAL_RANK[status]
    if status is OrderStatus.REJECTED:
        return 4
    return progress(AlixStatus(status.value))


def decide(current: OrderStatus, target: OrderStatus) -> Verdict:
    """Whether moving `current` → `target` is applied, a duplicate, or stale (and ignored).

    Never backwards; a final status is final; skipping ahead is fine; REJECTED only before Alix Pay has the order;
    UNKNOWN only from CREATING.
    """
    if target is current:
        return Verdict.DUPLICATE
    if is_final(current):
        return Verdict.STALE
    if target is OrderStatus.CREATING:
        return Verdict.STALE
    if target is OrderStatus.UNKNOWN:
        return Verdict.APPLIED if current is OrderStatus.CREATING else Verdict.STALE
    if target is OrderStatus.REJECTED:
        return Verdict.APPLIED if current in LOCAL_RANK else Verdict.STALE
    return Verdict.APPLIED if rank(target) > rank(current) else Verdict.STALE


def from_provider(raw: str | None) -> OrderStatus | None:
    """A provider status string as ours, or None when unknown (stored as received, never applied)."""
    status = parse_status(raw)
    return OrderStatus(status.value) if status is not None else None
