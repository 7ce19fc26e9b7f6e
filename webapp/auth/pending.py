"""A sign-in in progress kept in a sealed cookie, not in a session row: an anonymous `GET /login` writes nothing.

The cookie holds the OIDC state, nonce, PKCE verifier and the page to return to, encrypted and authenticated with
AES-GCM under a key derived from `SESSION_SECRET` (during a rotation, the previous one opens it too), for ten
minutes, sent only to `/auth/callback`. A visitor can neither read nor change it; the callback takes it once and
clears it.
"""

import base64
import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar.datastructures import Cookie

PENDING_COOKIE = "signin"
CALLBACK_PATH = "/auth/callback"
"""Where the identity provider sends the person back (the only path the pending-sign-in cookie is sent to)."""
PENDING_SECONDS = 600
NONCE_BYTES = 12


def _cipher(secret: str) -> AESGCM:
    return AESGCM(hashlib.sha256(f"cashout pending sign-in\0{secret}".encode()).digest())


def seal(data: dict[str, Any], secret: str, *, now: float | None = None) -> str:
    nonce = os.urandom(NONCE_BYTES)
    payload = json.dumps({"at": int(now if now is not None else time.time()), "data": data}).encode()
    sealed = nonce + _cipher(secret).encrypt(nonce, payload, PENDING_COOKIE.encode())
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unseal(value: str | None, secrets: Sequence[str], *, now: float | None = None) -> dict[str, Any] | None:
    """The sealed data, or None when missing, tampered with, sealed under none of `secrets` or too old."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return None
    payload = next(filter(None, (_opened(raw, secret) for secret in secrets)), None)
    if payload is None:
        return None
    age = (now if now is not None else time.time()) - payload["at"]
    return payload["data"] if 0 <= age <= PENDING_SECONDS else None


def _opened(raw: bytes, secret: str) -> dict[str, Any] | None:
    try:
        return json.loads(_cipher(secret).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], PENDING_COOKIE.encode()))
    except (ValueError, InvalidTag):
        return None


def pending_cookie(value: str, *, secure: bool) -> Cookie:
    """Lax is enough: the IdP sends the browser back with a top-level GET."""
    return Cookie(
        key=PENDING_COOKIE,
        value=value,
        path=CALLBACK_PATH,
        max_age=PENDING_SECONDS if value else 0,
        httponly=True,
        secure=secure,
        samesite="lax",
    )
