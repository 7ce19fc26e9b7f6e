"""IPN bodies for tests: correctly signed ones, and the hostile ones anybody can send."""

import functools
import json
from pathlib import Path

from webapp.alixpay import signing
from webapp.alixpay.crypto import Signer
from webapp.config import Settings

EXTERNAL_ID = "5b0c1d2e-0000-4000-8000-000000000001"


def ipn_body(
    settings: Settings,
    key_file,
    *,
    status: str = "PAYMENT_COMPLETED",
    order_id: str = EXTERNAL_ID,
    order_type: str = "CASH_OUT",
    fiat_amount: int = 100000,
    **unsigned: object,
) -> bytes:
    """A correctly signed IPN; `unsigned` adds fields the signature does not cover (camelCase, as on the wire)."""
    order = {"externalOrderId": order_id, "type": order_type, "fiatAmount": fiat_amount, "status": status}
    text = signing.order_string(
        external_order_id=order_id,
        order_type=order_type,
        fiat_amount=fiat_amount,
        status=status,
        secret_key=settings.alixpay.secret_key.get_secret_value(),
    )
    return json.dumps({**order, **unsigned, "signature": signer(key_file).sign(text)}).encode()


@functools.cache
def signer(key_file: Path) -> Signer:
    """Loading an RSA key checks it (tens of ms with OpenSSL 3): once per key file, not once per body."""
    return Signer.from_file(key_file)


def unsigned_order(amount: str, **fields: str) -> bytes:
    """A body aimed at the seeded order (so an applied one would show), with a raw JSON amount and no real signature."""
    parts = {"externalOrderId": f'"{EXTERNAL_ID}"', "type": '"CASH_OUT"', "status": '"SUCCESS"', "signature": '"AA"'}
    parts |= fields
    return (
        "{" + ",".join(f'"{name}":{value}' for name, value in {**parts, "fiatAmount": amount}.items()) + "}"
    ).encode()


DIGITS = "9" * (60 * 1024)  # 60 KiB: under the 64 KiB cap, so it is parsed rather than refused for its size
HOSTILE = {
    "decimal_string_amount": b'{"externalOrderId":"x","fiatAmount":"100000.5","status":"SUCCESS","signature":"AA"}',
    "exponent_string": unsigned_order('"1e5000"'),
    "exponent_number": unsigned_order("1e5000"),
    "huge_exponent_string": unsigned_order('"1e300000"'),
    "huge_exponent_number": unsigned_order("1e1000000"),
    "tiny_exponent_number": unsigned_order("1e-1000000"),
    "deep_nesting": b"[" * 60_000,
    "deep_nesting_inside_an_order": unsigned_order("[" * 60_000),
    "digits_number": unsigned_order(DIGITS),
    "digits_string": unsigned_order(f'"{DIGITS}"'),
    "nan": unsigned_order("NaN"),
    "infinity": unsigned_order("Infinity"),
    "minus_infinity": unsigned_order("-Infinity"),
    "negative": unsigned_order("-100000"),
    "boolean": unsigned_order("true"),
    "word_for_amount": unsigned_order('"one hundred thousand"'),
    "number_for_order_id": unsigned_order("100000", externalOrderId="12345"),
    "object_for_status": unsigned_order("100000", status='{"SUCCESS": 1}'),
    "array_body": b"[100000, 200000]",
    "not_utf8": b'{"fiatAmount": "\xff\xfe"}',
}
