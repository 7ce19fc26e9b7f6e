"""Signatures we give partners: webhook bodies (`t=…,v1=…`, Stripe-style) and return-URL parameters.

Both are HMAC-SHA256 with the partner's webhook secret over the timestamp and the exact bytes, so a partner
can refuse replays (old `t`) and tampering alike. How a partner checks them is in docs/embedding.md, and
`examples/partner/app.py` runs that recipe (the tests verify our signatures with it).
"""

import hashlib
import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

SIGNATURE_HEADER = "Cashout-Signature"


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `Cashout-Signature` header value: `t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp).encode() + b'.' + body)}"


def signed_return_url(secret: str, return_url: str, *, order_id: str, status: str, timestamp: int) -> str:
    """`return_url` with `order_id`, `status`, `t` and `sig` = HMAC of "<t>.<order_id>.<status>" added."""
    signature = _mac(secret, f"{timestamp}.{order_id}.{status}".encode())
    params = urlencode({"order_id": order_id, "status": status, "t": timestamp, "sig": signature})
    parts = urlsplit(return_url)
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
