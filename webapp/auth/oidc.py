"""The OpenID Connect relying party: discovery, PKCE authorization request, code exchange, id_token validation.

Every failure becomes an `OidcError` with a short reason code; token values never reach a message or a log line.
"""

import base64
import hashlib
import json
import logging
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2 import OAuth2Error
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from webapp.config import OIDCSettings

# authlib suggests its `httpx2` fork; we stay on httpx (see the stack notes), so its notice is noise here.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

logger = logging.getLogger(__name__)

METADATA_TTL_SECONDS = 3600


class OidcError(Exception):
    """Sign-in failed, for a `reason` the error page explains.

    Reasons: idp_error, missing_code, state_mismatch, token_failed, bad_id_token, idp_unreachable,
    email_unverified, no_email.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PendingLogin:
    """What the callback needs to finish a sign-in; kept in a sealed cookie between the two requests (`pending.py`)."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str
    name: str | None
    claims: dict[str, Any]
    id_token: str


def s256(code_verifier: str) -> str:
    """The PKCE S256 code challenge (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _decode(id_token: str, key_set: KeySet) -> jwt.Token:
    """Verify the RS256 signature with the key the header names; a header without `kid` may use any key."""
    registry = JWSRegistry(algorithms=["RS256"])
    try:
        return jwt.decode(id_token, key_set, registry=registry)
    except InvalidKeyIdError:
        if _header(id_token).get("kid") is not None:
            raise
    for key in key_set.keys:
        try:
            return jwt.decode(id_token, key, registry=registry)
        except JoseError:
            continue
    raise BadSignatureError()


def _header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return {}


class OidcClient:
    """One per app: discovery and JWKS are cached; the JWKS is fetched again when a token names an unknown key.

    Its two HTTP clients live as long as the app (`aclose`): a sign-in no longer sets up TLS and a connection pool
    of its own. The OAuth client only builds authorization URLs and exchanges codes; it remembers the last token
    it received (authlib's way) but never sends it: the IdP's documents and userinfo go through the plain client.
    """

    def __init__(self, settings: OIDCSettings, redirect_uri: str) -> None:
        self.settings = settings
        self.redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._http = httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._oauth = AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scope=settings.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=settings.timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._oauth.aclose()

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL_SECONDS:
            self._metadata = await self._get_json(self.settings.discovery_url, "discovery")
            self._metadata_at = time.monotonic()
        return self._metadata

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("idp_unreachable", f"{what}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise OidcError("idp_unreachable", f"{what}: not a JSON object")
        return data

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh:
            data = await self._get_json((await self.metadata())["jwks_uri"], "jwks")
            try:
                self._jwks = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError):
                raise OidcError("bad_id_token", "the IdP's JWKS cannot be read") from None
        return self._jwks

    async def start(self) -> tuple[str, PendingLogin]:
        """The IdP URL to send the person to, and what to keep in their session until they come back."""
        metadata = await self.metadata()
        pending = PendingLogin(
            state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32), code_verifier=secrets.token_urlsafe(64)
        )
        url, _ = self._oauth.create_authorization_url(
            metadata["authorization_endpoint"],
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
        )
        return url, pending

    async def finish(self, *, code: str, pending: PendingLogin) -> Identity:
        metadata = await self.metadata()
        try:
            token = await self._oauth.fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=pending.code_verifier
            )
        except (OAuth2Error, httpx.HTTPError, ValueError) as exc:
            raise OidcError("token_failed", type(exc).__name__) from None
        if "id_token" not in token:
            raise OidcError("token_failed", "no id_token in the token response")
        claims = await self._validated_claims(token["id_token"], token.get("access_token"), pending.nonce, metadata)
        if claims.get("email") is None and token.get("access_token") and metadata.get("userinfo_endpoint"):
            claims = {**(await self._userinfo(metadata["userinfo_endpoint"], token["access_token"])), **claims}
        email = claims.get("email")
        if not email:
            raise OidcError("no_email")
        if claims.get("email_verified") is False:
            raise OidcError("email_unverified")
        return Identity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=str(email).lower(),
            name=claims.get("name"),
            claims=dict(claims),
            id_token=token["id_token"],
        )

    async def _validated_claims(
        self, id_token: str, access_token: str | None, nonce: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            try:
                decoded = _decode(id_token, await self._key_set())
            except InvalidKeyIdError:  # the IdP may have rotated its keys since we cached them
                decoded = _decode(id_token, await self._key_set(refresh=True))
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                options={
                    "iss": {"values": [metadata["issuer"]]},
                    "aud": {"values": [self.settings.client_id]},
                },
                params={"nonce": nonce, "client_id": self.settings.client_id, "access_token": access_token},
            )
            claims.validate(leeway=self.settings.leeway_seconds)
        except (JoseError, ValueError) as exc:
            raise OidcError("bad_id_token", type(exc).__name__) from None
        return dict(claims)

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"authorization": f"Bearer {access_token}"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("token_failed", f"userinfo: {type(exc).__name__}") from None
        return data if isinstance(data, dict) else {}

    async def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the IdP, when it advertises an end-session endpoint."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except OidcError:
            return None
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": self.settings.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return str(httpx.URL(endpoint, params=params))
