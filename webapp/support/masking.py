"""Personal data as support sees it by default: enough to recognise a customer, not enough to misuse."""

import re

from webapp.orders.forms import mask_account
from webapp.orders.models import Order

__all__ = ["mask_account", "mask_body", "mask_email", "mask_name"]


def mask_email(email: str) -> str:
    """`nguyen.van.anh@example.com` → `ng•••@example.com`: the first two letters and the domain."""
    local, at, domain = email.partition("@")
    return f"{local[:2]}•••{at}{domain}" if at else f"{email[:2]}•••"


def mask_name(name: str) -> str:
    """Initials only: `NGUYEN VAN ANH` is shown as `N. V. A.`."""
    return " ".join(f"{part[0]}." for part in name.split() if part)


def mask_body(text: str, order: Order | None) -> str:
    """A raw IPN body with the order's account number, recipient name and email masked wherever they appear."""
    if order is None:
        return re.sub(r"\d{6,}", lambda digits: mask_account(digits.group()), text)
    for value, masked in (
        (order.account_number, mask_account(order.account_number)),
        (order.recipient_name, mask_name(order.recipient_name)),
        (order.user_email, mask_email(order.user_email)),
    ):
        if value:
            text = text.replace(value, masked)
    return text
