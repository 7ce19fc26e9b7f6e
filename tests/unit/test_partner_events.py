"""What a partner's webhook says about a change: the status, the USDT side as Alix Pay reported it, its reference."""

import json

from tests.builders import make_order
from webapp.embed.outbox import event_body
from webapp.orders.events import StatusChanged

REPORTED = {
    "type": "CASH_OUT",
    "tokenTransfer": {"currency": "USDT", "price": 25000, "amount": 4.2},
    "fees": {"systemFee": 0.1, "processingFee": 0.05},
}


def body_of(change: StatusChanged, *, test: bool = False) -> dict:
    return json.loads(event_body("evt_1", "order.completed", change, test=test))


def test_the_webhook_carries_the_usdt_figures_alix_pay_reported_with_the_change_and_the_partners_reference() -> None:
    order = make_order(user_id=1, email="a@example.com", fiat_amount=105_000, partner_reference="wd-42")
    body = body_of(StatusChanged(order, "PAYMENT_COMPLETED", "SUCCESS", "ipn", reported=REPORTED))
    data = body["data"]
    assert (data["status"], data["previousStatus"], data["final"], data["fiatAmount"]) == (
        "SUCCESS",
        "PAYMENT_COMPLETED",
        True,
        105_000,
    )
    assert data["partnerReference"] == "wd-42" and body["test"] is False
    assert data["token"] == {
        "currency": "USDT",
        "amount": "4.200000",
        "rate": "25000",
        "systemFee": "0.100000",
        "processingFee": "0.050000",
        "total": "4.350000",
        "reportedBy": "alixpay",
    }


def test_without_a_report_the_orders_last_one_counts_and_without_any_there_is_no_token_part() -> None:
    known = make_order(user_id=1, email="a@example.com", provider_order=REPORTED)
    assert body_of(StatusChanged(known, "AWAITING_PAYMENT", "FAIL", "manual"))["data"]["token"]["amount"] == "4.200000"
    unknown = make_order(user_id=1, email="a@example.com", status="CREATING")
    data = body_of(StatusChanged(unknown, "CREATING", "REJECTED", "create"), test=True)
    assert data["data"]["token"] is None and data["data"]["partnerReference"] is None and data["test"] is True
