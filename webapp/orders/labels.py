"""What each status means to the person paying out, in plain words (translated where shown)."""

from dataclasses import dataclass

from webapp.i18n import N_
from webapp.orders.state import OrderStatus


@dataclass(frozen=True)
class StatusText:
    label: str
    headline: str
    explanation: str


STATUS_TEXTS: dict[OrderStatus, StatusText] = {
    OrderStatus.CREATING: StatusText(
        N_("Placing"), N_("We're placing your order"), N_("This takes a few seconds. You do not need to do anything.")
    ),
    OrderStatus.UNKNOWN: StatusText(
        N_("Checking"),
        N_("We're confirming your order with Alix Pay"),
        N_("Alix Pay did not answer in time. We are checking with them; do not place the order again."),
    ),
    OrderStatus.REJECTED: StatusText(
        N_("Not accepted"),
        N_("Alix Pay did not accept this payout"),
        N_("No money moved. Check the details and place a new cash-out."),
    ),
    OrderStatus.AWAITING_PAYMENT: StatusText(
        N_("In progress"),
        N_("We're sending VND to your bank"),
        N_("Alix Pay has your order and is paying out to the bank account."),
    ),
    OrderStatus.PAYMENT_COMPLETED: StatusText(
        N_("Money sent"),
        N_("Money sent — finishing up"),
        N_("The VND has been paid out to the bank account. We are settling the USDT."),
    ),
    OrderStatus.PROCESSING_TOKEN_TRANSFER: StatusText(
        N_("Money sent"),
        N_("Money sent — settling the USDT"),
        N_("The VND is with the bank. The USDT is being taken from the wallet; this is the last step."),
    ),
    OrderStatus.SUCCESS: StatusText(
        N_("Done"), N_("Done — the money has been paid out"), N_("The cash-out is complete. Nothing more to do.")
    ),
    OrderStatus.FAIL: StatusText(
        N_("Failed"),
        N_("The payout failed"),
        N_(
            "The bank did not accept the transfer and no USDT was taken. "
            "Check the account number and name, then try again."
        ),
    ),
    OrderStatus.ERROR: StatusText(
        N_("Failed"),
        N_("The payout stopped because of an error"),
        N_("Something went wrong at Alix Pay. Contact support and give them the order number below."),
    ),
}


def status_text(status: str) -> StatusText:
    return STATUS_TEXTS[OrderStatus(status)]
