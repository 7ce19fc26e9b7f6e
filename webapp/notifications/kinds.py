"""The one table of which statuses are mailed, as which kind, and whether the person may turn that mail off."""

from dataclasses import dataclass

from webapp.i18n import N_
from webapp.orders.statuses import OrderStatus


@dataclass(frozen=True)
class MailKind:
    name: str
    essential: bool
    """Sent whatever the person's preference: it is about the outcome of their money."""
    subject: str
    """Formatted with `reference` (the short order reference) and `amount`."""


PLACED = MailKind("placed", False, N_("Cash-out %(reference)s placed: %(amount)s"))
PAID_OUT = MailKind("paid_out", False, N_("Cash-out %(reference)s: %(amount)s sent to your bank"))
DONE = MailKind("done", True, N_("Cash-out %(reference)s is complete: %(amount)s"))
FAILED = MailKind("failed", True, N_("Cash-out %(reference)s failed"))

MAILED_STATUSES: dict[OrderStatus, MailKind] = {
    OrderStatus.AWAITING_PAYMENT: PLACED,
    OrderStatus.PAYMENT_COMPLETED: PAID_OUT,
    OrderStatus.SUCCESS: DONE,
    OrderStatus.FAIL: FAILED,
    OrderStatus.ERROR: FAILED,
}
"""A rejected create is not mailed: the person sees it on the page the moment they confirm."""
KINDS = {kind.name: kind for kind in MAILED_STATUSES.values()}
