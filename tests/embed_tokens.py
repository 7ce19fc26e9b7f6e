"""The partner's side, for tests: launch tokens as a partner's server mints them, and its webhook recipe."""

import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from joserfc import jwt
from joserfc.jwk import Key

EXAMPLE_PARTNER = Path(__file__).resolve().parents[1] / "examples" / "partner" / "app.py"
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


def example_partner() -> ModuleType:
    """`examples/partner/app.py`: its `verify_signature` is the recipe partners follow (docs/embedding.md)."""
    spec = importlib.util.spec_from_file_location("example_partner", EXAMPLE_PARTNER)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (Litestar resolves its handlers' annotations here)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
