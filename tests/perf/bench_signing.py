"""Signing and verifying through our layer against raw `cryptography` calls, measured in the same run.

Prints operations per second and the ratio to the baseline (1.00 means our layer adds nothing). Not a test:
run it with `make bench`. Keys are made fresh; nothing is asserted, since shared machines are noisy.
"""

import base64
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from webapp.alixpay import signing
from webapp.alixpay.crypto import Signer, Verifier

ROUNDS = 400


def rate(operation: Callable[[], object], rounds: int = ROUNDS) -> float:
    operation()  # warm up
    started = time.perf_counter()
    for _ in range(rounds):
        operation()
    return rounds / (time.perf_counter() - started)


def main() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    text = signing.order_string(
        external_order_id="f1a2acc8-c865-44fe-8e6d-d0857ada4d37",
        order_type="CASH_OUT",
        fiat_amount=100000,
        status="SUCCESS",
        secret_key="sk_bench",
    )
    raw_signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    signer, verifier = Signer(key), Verifier([key.public_key()])
    signature = base64.b64encode(raw_signature).decode()

    figures = {
        "sign": (
            rate(lambda: key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())),
            rate(lambda: signer.sign(text)),
        ),
        "verify": (
            rate(
                lambda: key.public_key().verify(raw_signature, text.encode(), padding.PKCS1v15(), hashes.SHA256()), 4000
            ),
            rate(lambda: verifier.verify(text, signature), 4000),
        ),
    }
    for name, (baseline, ours) in figures.items():
        print(f"{name:7} baseline {baseline:9.0f} ops/s   ours {ours:9.0f} ops/s   ratio {ours / baseline:4.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
