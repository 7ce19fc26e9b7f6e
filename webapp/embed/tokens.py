"""Launch tokens: a partner's server vouches for one signed-in user with a short JWT, which we verify strictly.

Only the partner's registered algorithm is accepted (no `alg` confusion), the audience must be us, the token
must expire within five minutes, the email must be verified, and a `return_url` must be one the partner
registered. Single use (`jti`) is the caller's job: it needs the database. No web imports here.
"""

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
    SecurityWarning,
)
from joserfc.jwk import Key, OctKey, OKPKey, RSAKey
from joserfc.jwt import ClaimsOption

MAX_TOKEN_CHARS = 8192
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30
ALGORITHMS = ("EdDSA", "RS256", "HS256")
MIN_SECRET_BYTES = 32
REFERENCE = re.compile(r"[A-Za-z0-9._:/#-]{1,64}")
"""A partner's reference: 1-64 characters a log line, a URL and a CSV cell all keep as they are."""


class LaunchRefused(Exception):
    """Why a launch token was refused: `reason` is one of a fixed set, shown to the person as a sentence."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class LaunchClaims:
    partner: str
    subject: str
    email: str
    jti: str
    expires_at: datetime
    locale: str | None = None
    amount: int | None = None
    return_url: str | None = None
    reference: str | None = None
    """The partner's own reference for the cash-out (`reference`), given back in its webhooks."""


def verification_key(alg: str, material: str) -> Key:
    """The key a partner registered: a PEM public key (EdDSA, RS256) or a shared secret (HS256)."""
    if alg == "HS256":
        if len(material.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"an HS256 secret needs at least {MIN_SECRET_BYTES} bytes")
        return OctKey.import_key(material)
    if alg == "RS256":
        key: Key = RSAKey.import_key(material)
    elif alg == "EdDSA":
        key = OKPKey.import_key(material)
    else:
        raise ValueError(f"unsupported launch token algorithm {alg!r} (use one of {', '.join(ALGORITHMS)})")
    if key.is_private:
        raise ValueError("register the partner's public key, not its private key")
    return key


def _decode(token: str, alg: str, key: Key) -> jwt.Token:
    # RFC 9864 prefers "Ed25519" over "EdDSA"; both name the same signature, and partners' libraries send EdDSA.
    accepted = ["EdDSA", "Ed25519"] if alg == "EdDSA" else [alg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.decode(token, key, algorithms=accepted)


def _decode_with_any(token: str, keys: Sequence[tuple[str, Key]]) -> jwt.Token:
    """The token verified by the first of the partner's keys that signed it (two during a rotation).

    A signature none of them made is `bad_signature`; a token no key's algorithm can read is `malformed`.
    """
    refusal: LaunchRefused | None = None
    for alg, key in keys:
        try:
            return _decode(token, alg, key)
        except BadSignatureError as error:
            refusal = LaunchRefused("bad_signature")
            refusal.__cause__ = error
        except (JoseError, ValueError) as error:  # an unexpected alg, a broken header or payload
            if refusal is None or refusal.reason != "bad_signature":
                refusal = LaunchRefused("malformed", type(error).__name__)
                refusal.__cause__ = error
    raise refusal or LaunchRefused("malformed")


def _text(claims: Mapping[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise LaunchRefused("missing_claim", name)
    value = str(value).strip()
    if not value:
        raise LaunchRefused("missing_claim", name)
    if len(value) > limit:
        raise LaunchRefused("malformed", f"{name} is longer than {limit}")
    return value


def _claims_registry(slug: str, audience: str, now: float) -> jwt.JWTClaimsRegistry:
    """RFC 7519's checks, by joserfc: who issued it, for whom, until when, since when, about whom."""
    required: dict[str, ClaimsOption] = {"essential": True}
    return jwt.JWTClaimsRegistry(
        now=int(now),
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": slug},
        aud={"essential": True, "value": audience},
        exp=required,
        sub=required,
        jti=required,
        email=required,
    )


def _refusal(error: ClaimError, claims: dict[str, object]) -> LaunchRefused:
    """What the person is told for the first claim joserfc refused."""
    names = error.claim.split(",")  # a missing-claims error names every missing one
    for name, reason in (("iss", "wrong_issuer"), ("aud", "wrong_audience")):
        if name in names:
            return LaunchRefused(reason)
    if isinstance(error, ExpiredTokenError):
        return LaunchRefused("expired")
    if isinstance(error, MissingClaimError) or error.claim in ("sub", "jti", "email"):  # absent, blank or no text
        return LaunchRefused("missing_claim", error.claim)
    at = claims.get(error.claim)
    if error.claim in ("nbf", "iat") and isinstance(at, int | float) and not isinstance(at, bool):
        return LaunchRefused("not_yet_valid", error.claim)
    return LaunchRefused("malformed", error.claim)


def verify_launch_token(
    token: str,
    *,
    slug: str,
    keys: Sequence[tuple[str, Key]],
    audience: str,
    return_urls: list[str],
    now: float,
) -> LaunchClaims:
    """The token's claims once every check has passed, else LaunchRefused naming the first that failed.

    `keys`: (algorithm, key) the partner registered, the current first (`PartnerSecrets.launch_keys`).
    """
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise LaunchRefused("malformed")
    claims = _decode_with_any(token, keys).claims
    try:
        _claims_registry(slug, audience, now).validate(claims)
    except ClaimError as error:
        raise _refusal(error, claims) from error
    expires = float(claims["exp"])
    if expires > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise LaunchRefused("too_long_lived")
    return launch_claims(claims, slug=slug, return_urls=return_urls, expires_at=datetime.fromtimestamp(expires, UTC))


def launch_claims(
    claims: Mapping[str, Any], *, slug: str, return_urls: list[str], expires_at: datetime
) -> LaunchClaims:
    """What a launch asks for, checked: the person (`sub`, `email`, verified), `jti`, and the optional claims.

    The one check of a launch's content, whoever vouched for it: the partner's signed token, or its server through
    the partner API (`POST /api/partner/v1/sessions`, a launch ticket).
    """
    subject, email, jti = _text(claims, "sub", 200), _text(claims, "email", 320), _text(claims, "jti", 200)
    if "@" not in email or any(char.isspace() for char in email):
        raise LaunchRefused("malformed", "email")
    if claims.get("email_verified") is not True:
        raise LaunchRefused("email_unverified")
    return_url = claims.get("return_url")
    if return_url is not None and return_url not in return_urls:
        raise LaunchRefused("return_url_not_allowed")
    amount = claims.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise LaunchRefused("malformed", "amount")
    reference = claims.get("reference")
    if reference is not None and (not isinstance(reference, str) or not REFERENCE.fullmatch(reference)):
        raise LaunchRefused("malformed", "reference")
    locale = claims.get("locale")
    return LaunchClaims(
        partner=slug,
        subject=subject,
        email=email.lower(),
        jti=jti,
        expires_at=expires_at,
        locale=locale if isinstance(locale, str) else None,
        amount=amount,  # type: ignore[arg-type]
        return_url=return_url,  # type: ignore[arg-type]
        reference=reference,
    )
