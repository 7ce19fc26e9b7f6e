"""A cash-out's recipient is kept once, when the cash-out is first paid out."""

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Executable

from tests.builders import make_order
from webapp.orders.events import StatusChanged
from webapp.orders.recipients import keep_recipient


class Collected:
    """A unit that only collects the rows its subscribers add."""

    def __init__(self) -> None:
        self.sql = SimpleNamespace(dialect="sqlite")
        self.rows: list[dict[str, Any]] = []

    def add(self, statement: Executable, values: dict[str, Any]) -> None:
        self.rows.append(values)


@pytest.mark.parametrize(
    ("previous", "status", "kept"),
    [
        ("AWAITING_PAYMENT", "PAYMENT_COMPLETED", True),
        ("AWAITING_PAYMENT", "SUCCESS", True),  # a notification skipped: paid out all the same
        ("PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", False),  # already kept at PAYMENT_COMPLETED
        ("PROCESSING_TOKEN_TRANSFER", "SUCCESS", False),
        ("AWAITING_PAYMENT", "FAIL", False),
    ],
)
async def test_a_recipient_is_kept_when_its_cash_out_is_first_paid_out_and_never_again(
    previous: str, status: str, kept: bool
) -> None:
    unit = Collected()
    order = make_order(user_id=7, email="a@example.com", status=previous)
    await keep_recipient(StatusChanged(order, previous, status, "ipn"), unit)  # type: ignore[arg-type]
    assert [(row["user_id"], row["account_number"]) for row in unit.rows] == (
        [(7, order.account_number)] if kept else []
    )


async def test_an_unticked_recipient_is_never_kept() -> None:
    unit = Collected()
    order = make_order(user_id=7, email="a@example.com", save_recipient=False)
    await keep_recipient(StatusChanged(order, "AWAITING_PAYMENT", "PAYMENT_COMPLETED", "ipn"), unit)  # type: ignore[arg-type]
    assert unit.rows == []
