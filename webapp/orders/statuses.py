"""The one table of our order statuses: order of progress, final or not, outcome, the words people read, the steps.

Our own statuses surround the contract's: CREATING (stored, Alix Pay not yet asked), UNKNOWN (asked, answer
lost: only the details call may resolve it) and REJECTED (Alix Pay refused the create; nothing exists there).
The contract's statuses take their progress and finality from Alix Pay's table (`alixpay/statuses.py`).
Templates get this table and `timeline()`; they decide nothing about statuses themselves.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from webapp.alixpay.statuses import AlixStatus, is_terminal, parse_status, progress
from webapp.i18n import N_


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


class Outcome(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusInfo:
    rank: int
    """Order of progress; 0 while Alix Pay may not have the order yet. Never compared once a status is final."""
    final: bool
    outcome: Outcome
    label: str
    headline: str
    explanation: str
    step: str | None = None
    """The order page's timeline step this status marks, if it is one."""
    awaits_payment: bool = False
    """Alix Pay holds the order until it expires (the page says until when)."""
    wallet_untouched: bool = False
    """A failure in which no money left the wallet: the person may place the cash-out again."""

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED


def _info(
    status: OrderStatus,
    outcome: Outcome,
    label: str,
    headline: str,
    explanation: str,
    step: str | None = None,
    **flags: bool,
) -> StatusInfo:
    provider = parse_status(status.value)
    rank, final = (progress(provider), is_terminal(provider)) if provider else (0, outcome is not Outcome.PENDING)
    return StatusInfo(rank, final, outcome, label, headline, explanation, step, **flags)


S, PENDING, SUCCEEDED, FAILED = OrderStatus, Outcome.PENDING, Outcome.SUCCEEDED, Outcome.FAILED
STATUS_TABLE: dict[OrderStatus, StatusInfo] = {
    S.CREATING: _info(
        S.CREATING,
        PENDING,
        N_("Placing"),
        N_("We're placing your order"),
        N_("This takes a few seconds. You do not need to do anything."),
    ),
    S.UNKNOWN: _info(
        S.UNKNOWN,
        PENDING,
        N_("Checking"),
        N_("We're confirming your order with Alix Pay"),
        N_("Alix Pay did not answer in time. We are checking with them; do not place the order again."),
    ),
    S.REJECTED: _info(
        S.REJECTED,
        FAILED,
        N_("Not accepted"),
        N_("Alix Pay did not accept this payout"),
        N_("No money moved. Check the details and place a new cash-out."),
        wallet_untouched=True,
    ),
    S.AWAITING_PAYMENT: _info(
        S.AWAITING_PAYMENT,
        PENDING,
        N_("In progress"),
        N_("We're sending VND to your bank"),
        N_("Alix Pay has your order and is paying out to the bank account."),
        step=N_("Order placed"),
        awaits_payment=True,
    ),
    S.PAYMENT_COMPLETED: _info(
        S.PAYMENT_COMPLETED,
        PENDING,
        N_("Money sent"),
        N_("Money sent — finishing up"),
        N_("The VND has been paid out to the bank account. We are settling the USDT."),
        step=N_("VND sent to the bank"),
    ),
    S.PROCESSING_TOKEN_TRANSFER: _info(
        S.PROCESSING_TOKEN_TRANSFER,
        PENDING,
        N_("Money sent"),
        N_("Money sent — settling the USDT"),
        N_("The VND is with the bank. The USDT is being taken from the wallet; this is the last step."),
        step=N_("Settling the USDT"),
    ),
    S.SUCCESS: _info(
        S.SUCCESS,
        SUCCEEDED,
        N_("Done"),
        N_("Done — the money has been paid out"),
        N_("The cash-out is complete. Nothing more to do."),
        step=N_("Done"),
    ),
    S.FAIL: _info(
        S.FAIL,
        FAILED,
        N_("Failed"),
        N_("The payout failed"),
        N_(
            "The bank did not accept the transfer and no USDT was taken. "
            "Check the account number and name, then try again."
        ),
        wallet_untouched=True,
    ),
    S.ERROR: _info(
        S.ERROR,
        FAILED,
        N_("Failed"),
        N_("The payout stopped because of an error"),
        N_("Something went wrong at Alix Pay. Contact support and give them the order number below."),
    ),
}
FINAL_STATUSES = tuple(status for status, info in STATUS_TABLE.items() if info.final)
STEPS = tuple(status for status, info in STATUS_TABLE.items() if info.step)
PAID_OUT_STATUSES = tuple(
    status
    for status, info in STATUS_TABLE.items()
    if not info.failed and info.rank >= STATUS_TABLE[OrderStatus.PAYMENT_COMPLETED].rank
)
"""The money reached the recipient's bank: the statuses from PAYMENT_COMPLETED on, failures aside."""


def status_info(status: str) -> StatusInfo:
    return STATUS_TABLE[OrderStatus(status)]


def is_final(status: str) -> bool:
    return status_info(status).final


@dataclass(frozen=True)
class Step:
    label: str
    state: str
    """done | current | upcoming | failed | skipped"""
    at: datetime | None = None


def timeline(status: str, reached: dict[str, datetime], final_at: datetime | None = None) -> list[Step]:
    """The order page's steps: what is done, where the order is, and, for a failed order, where it stopped.

    `reached` maps each status the order entered to when; a status skipped on the way (Alix Pay may jump ahead)
    still counts as passed.
    """
    info = status_info(status)
    steps: list[Step] = []
    stopped = False
    for step_status in STEPS:
        step = STATUS_TABLE[step_status]
        at = reached.get(step_status.value)
        if info.outcome is FAILED:
            state = "done" if at else ("skipped" if stopped else "failed")
            stopped = stopped or not at
            at = at or (final_at if state == "failed" else None)
        elif step_status.value == status:
            state = "done" if info.final else "current"
        else:
            state = "done" if step.rank < info.rank or at else "upcoming"
        steps.append(Step(step.step or "", state, at))
    return steps
