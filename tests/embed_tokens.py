"""Launch tokens as a partner's server mints them, for tests (real keys, made per test run)."""

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import Key

HS_SECRET = "launch_" + "s3cret-for-tests-only-" * 2


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "acme",
        "aud": "http://testserver.local",
        "sub": "wallet-user-7",
        "email": "Wallet.User@example.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
    }
    return {name: value for name, value in (base | overrides).items() if value is not None}


def mint(key: Key | str, alg: str = "HS256", **overrides: Any) -> str:
    return jwt.encode({"alg": alg}, claims(**overrides), key, algorithms=[alg])
