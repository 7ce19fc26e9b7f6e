"""Builders for test rows: an ordinary order, with only what a test cares about overridden; partners' secrets; an
ASGI request scope."""

import uuid
from typing import Any

from litestar.types import Scope

from webapp.config import DEV_SECRETS_KEY
from webapp.embed.partners import PartnerSecrets
from webapp.notifications.emails import PublicLinks
from webapp.orders.models import Order
from webapp.secretbox import SecretBox

PARTNER_SECRETS = PartnerSecrets(SecretBox([DEV_SECRETS_KEY]))
"""How an app with the default settings keeps partners' secrets (tests save partners with it)."""


def make_order(*, user_id: int | None, email: str, **overrides: Any) -> Order:
    """An AWAITING_PAYMENT order of 100 000 VND to Techcombank ••••1018, placed by `email`."""
    account = overrides.pop("account_number", "19030413601018")
    values: dict[str, Any] = {
        "external_order_id": str(uuid.uuid4()),
        "submission_id": uuid.uuid4().hex,
        "user_id": user_id,
        "user_email": email,
        "status": "AWAITING_PAYMENT",
        "fiat_amount": 100000,
        "bank_bin": "970407",
        "bank_code": "TECHCOMBANK",
        "bank_name": "Techcombank",
        "account_number": account,
        "account_tail": account[-4:],
        "recipient_name": "NGUYEN VAN ANH",
        "transfer_content": "RUT TIEN ABCDEFGH",
        "provider_order": {"type": "CASH_OUT"},
    }
    return Order(**(values | overrides))


def named_links(base_url: str) -> PublicLinks:
    """Links that spell the route's name and parameters (`/orders.detail/<id>`): for tests of what a mail says,
    not of where it leads (the live app's mails are checked against its real routes in `test_emails.py`)."""
    return PublicLinks(base_url, lambda name, **params: "/".join(["", name, *map(str, params.values())]))


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    """The scope a server gives an app for an HTTP request from 127.0.0.1 (tests that speak ASGI themselves)."""
    return {  # type: ignore[return-value]
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers or [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
