"""Signatures we give partners: webhook bodies (`t=…,v1=…`, Stripe-style) and return-URL parameters.

Both are HMAC-SHA256 with the partner's webhook secret over the timestamp and the exact bytes, so a partner
can refuse replays (old `t`) and tampering alike.
"""

import hashlib
import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

SIGNATURE_HEADER = "Cashout-Signature"
TOLERANCE_SECONDS = 300


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `Cashout-Signature` header value: `t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp).encode() + b'.' + body)}"


def verify_webhook_signature(secret: str, body: bytes, header: str, *, now: int) -> bool:
    """The documented recipe, as a partner runs it: the timestamp is recent and one `v1` matches."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for name, value in parts if name == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or abs(now - int(timestamps[0])) > TOLERANCE_SECONDS:
        return False
    expected = _mac(secret, timestamps[0].encode() + b"." + body)
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in parts)


def signed_return_url(secret: str, return_url: str, *, order_id: str, status: str, timestamp: int) -> str:
    """`return_url` with `order_id`, `status`, `t` and `sig` = HMAC of "<t>.<order_id>.<status>" added."""
    signature = _mac(secret, f"{timestamp}.{order_id}.{status}".encode())
    params = urlencode({"order_id": order_id, "status": status, "t": timestamp, "sig": signature})
    parts = urlsplit(return_url)
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
