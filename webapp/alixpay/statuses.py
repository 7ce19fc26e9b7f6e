"""The one status table (CONTRACT.md §3): order of progress, terminal flags, and unknown strings."""

from enum import StrEnum


class AlixStatus(StrEnum):
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    PAYMENT_COMPLETED = "PAYMENT_COMPLETED"
    PROCESSING_TOKEN_TRANSFER = "PROCESSING_TOKEN_TRANSFER"  # noqa: S105 (a status, not a secret)
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    ERROR = "ERROR"


# status → (order of progress, terminal)
STATUS_TABLE: dict[AlixStatus, tuple[int, bool]] = {
    AlixStatus.AWAITING_PAYMENT: (1, False),
    AlixStatus.PAYMENT_COMPLETED: (2, False),
    AlixStatus.PROCESSING_TOKEN_TRANSFER: (3, False),
    AlixStatus.SUCCESS: (4, True),
    AlixStatus.FAIL: (4, True),
    AlixStatus.ERROR: (4, True),
}


def parse_status(raw: str | None) -> AlixStatus | None:
    """The known status, or None for a string we do not know: it is stored and logged, never guessed."""
    try:
        return AlixStatus(raw)
    except ValueError:
        return None


def progress(status: AlixStatus) -> int:
    return STATUS_TABLE[status][0]


def is_terminal(status: AlixStatus) -> bool:
    return STATUS_TABLE[status][1]
