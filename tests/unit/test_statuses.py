import pytest

from webapp.alixpay.statuses import STATUS_TABLE, AlixStatus, is_terminal, parse_status, progress


@pytest.mark.parametrize("raw", [s.value for s in AlixStatus])
def test_every_contract_status_parses(raw: str) -> None:
    assert parse_status(raw) == raw


@pytest.mark.parametrize("raw", ["", None, "success", "REFUNDED", "AWAITING PAYMENT"])
def test_unknown_status_is_not_guessed(raw: str | None) -> None:
    assert parse_status(raw) is None


def test_order_of_progress_and_terminal_flags_follow_the_contract() -> None:
    assert [s for s in AlixStatus if not is_terminal(s)] == [
        AlixStatus.AWAITING_PAYMENT,
        AlixStatus.PAYMENT_COMPLETED,
        AlixStatus.PROCESSING_TOKEN_TRANSFER,
    ]
    assert [progress(s) for s in AlixStatus] == [1, 2, 3, 4, 4, 4]
    assert set(STATUS_TABLE) == set(AlixStatus)
