"""Every pair of statuses through the forward-only state machine."""

import itertools

import pytest

from webapp.orders.state import Verdict, decide, from_provider
from webapp.orders.statuses import FINAL_STATUSES, OrderStatus

S = OrderStatus
PROGRESS = [S.AWAITING_PAYMENT, S.PAYMENT_COMPLETED, S.PROCESSING_TOKEN_TRANSFER]
TERMINAL = [S.SUCCESS, S.FAIL, S.ERROR]


def expected(current: OrderStatus, target: OrderStatus) -> Verdict:
    """The rules, written out independently of the implementation's rank table."""
    if current is target:
        return Verdict.DUPLICATE
    if current in (S.REJECTED, *TERMINAL):
        return Verdict.STALE
    if current in (S.CREATING, S.UNKNOWN):
        if target is S.CREATING:
            return Verdict.STALE
        if target is S.UNKNOWN:
            return Verdict.APPLIED if current is S.CREATING else Verdict.STALE
        return Verdict.APPLIED  # REJECTED, any provider status
    if target in (S.CREATING, S.UNKNOWN, S.REJECTED):
        return Verdict.STALE
    if target in TERMINAL:
        return Verdict.APPLIED
    return Verdict.APPLIED if PROGRESS.index(target) > PROGRESS.index(current) else Verdict.STALE


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)), ids=lambda s: s.value)
def test_every_pair(current: OrderStatus, target: OrderStatus) -> None:
    assert decide(current, target) is expected(current, target)


def test_status_never_goes_backwards_along_any_path() -> None:
    order = [S.CREATING, *PROGRESS, S.SUCCESS]
    for earlier, later in itertools.combinations(order, 2):
        assert decide(later, earlier) is Verdict.STALE


def test_skipping_ahead_is_allowed() -> None:
    assert decide(S.AWAITING_PAYMENT, S.SUCCESS) is Verdict.APPLIED
    assert decide(S.UNKNOWN, S.PROCESSING_TOKEN_TRANSFER) is Verdict.APPLIED


def test_terminal_is_final() -> None:
    for final, other in itertools.product(FINAL_STATUSES, S):
        assert decide(final, other) in (Verdict.STALE, Verdict.DUPLICATE)


def test_unknown_provider_status_is_not_mapped() -> None:
    assert from_provider("REFUNDED") is None
    assert from_provider("SUCCESS") is S.SUCCESS
    assert from_provider("CREATING") is None  # ours, never Alix Pay's
