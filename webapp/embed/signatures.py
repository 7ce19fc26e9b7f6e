"""Signatures we give partners: webhook bodies (`t=…,v1=…`, Stripe-style) and return-URL parameters.

Both are HMAC-SHA256 with the partner's webhook secret over the timestamp and the exact bytes, so a partner
can refuse replays (old `t`) and tampering alike. While a rotated secret's grace lasts, each carries a signature
by the new and by the old secret (`PartnerSecrets.webhook_secrets`): the partner's side may switch at any time.
How a partner checks them is in docs/embedding.md, and `examples/partner/app.py` runs that recipe (the tests
verify our signatures with it).
"""

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

SIGNATURE_HEADER = "Cashout-Signature"


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _macs(secrets: Sequence[str], message: bytes) -> list[str]:
    """One MAC per secret in force (a lone string would be signed character by character: refused)."""
    if isinstance(secrets, str):
        raise TypeError("give the secrets in force as a list, newest first")
    return [_mac(secret, message) for secret in secrets]


def webhook_signature(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """The `Cashout-Signature` header value: `t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`.

    One `v1` per secret in force, newest first: during a rotation a receiver holding either secret finds its own.
    """
    message = str(timestamp).encode() + b"." + body
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in _macs(secrets, message))])


def signed_return_url(secrets: Sequence[str], return_url: str, *, order_id: str, status: str, timestamp: int) -> str:
    """`return_url` with `order_id`, `status`, `t`, and one `sig` (HMAC of "<t>.<order_id>.<status>") per secret."""
    message = f"{timestamp}.{order_id}.{status}".encode()
    fields = [("order_id", order_id), ("status", status), ("t", str(timestamp))]
    params = urlencode(fields + [("sig", mac) for mac in _macs(secrets, message)])
    parts = urlsplit(return_url)
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
