"""Who may use a partner's hosted pages, and what each embedded request carries (partner, theme, framing, CSRF).

Embedded pages live in a partner's iframe, on another site: their session cookie is `SameSite=None; Secure;
Partitioned`, so the browser's `SameSite` defence is gone, and the CSRF token is kept in the session itself
and checked on every unsafe request (the app-wide double-submit cookie would not be sent inside the iframe).
"""

import secrets
from dataclasses import dataclass

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.utils.scope.state import ScopeState

from webapp.auth.guards import SAFE_METHODS, person_of
from webapp.embed.models import Partner
from webapp.embed.partners import partner_by_slug
from webapp.embed.theme import Theme
from webapp.flows import flow_partner
from webapp.i18n import LOCALE_SESSION_KEY, N_, supported
from webapp.security_headers import allow_framing

EMBED_SESSION_KEY = "embed"
EMBED_STATE_KEY = "embed"
STARTS_SESSION = "embed_starts_session"
"""Handler `opt` flag: the route that opens an embedded session (so it needs none)."""

REFUSALS = {
    "malformed": (400, N_("This link is not a valid cash-out link.")),
    "bad_signature": (403, N_("This link was not signed by the app you came from.")),
    "wrong_issuer": (403, N_("This link was made for another partner.")),
    "wrong_audience": (403, N_("This link was made for another service.")),
    "expired": (403, N_("This link has expired. Go back to the app you came from and open the cash-out again.")),
    "too_long_lived": (403, N_("This link is valid for too long to be safe. Ask the app you came from to fix it.")),
    "not_yet_valid": (403, N_("This link is not valid yet. Check your device's clock, or try again in a minute.")),
    "missing_claim": (400, N_("This link is missing information we need.")),
    "email_unverified": (403, N_("Your email address has not been verified by the app you came from.")),
    "return_url_not_allowed": (403, N_("This link asks to return you to an address we do not know.")),
    "replayed": (
        403,
        N_("This link has already been used. Go back to the app you came from and open the cash-out again."),
    ),
    "unknown_partner": (404, N_("We do not know the app you came from.")),
    "disabled_partner": (403, N_("Cash-outs from the app you came from are switched off at the moment.")),
    "session_ended": (401, N_("Your cash-out session has ended. Go back to the app you came from and open it again.")),
    "csrf": (403, N_("This request did not come from our page. Reload the page and try again.")),
}


class EmbedRefused(HTTPException):
    """A refused embedded request: a localised page in the partner's frame; nothing was created or changed."""

    def __init__(self, reason: str) -> None:
        status_code, _message = REFUSALS[reason]
        super().__init__(status_code=status_code, detail=reason)
        self.reason = reason


@dataclass(frozen=True)
class EmbedContext:
    """What an embedded page needs: the partner, its checked theme, and where to post events or return to."""

    partner: Partner
    theme: Theme
    origin: str
    """The parent page's origin, one of the partner's: the exact `targetOrigin` of every event we post."""
    return_url: str | None = None


def embed_context(connection: ASGIConnection) -> EmbedContext | None:
    return connection.scope.get("state", {}).get(EMBED_STATE_KEY)


def embed_session(connection: ASGIConnection) -> dict:
    session = connection.scope.get("session")
    data = session.get(EMBED_SESSION_KEY) if isinstance(session, dict) else None
    return data if isinstance(data, dict) else {}


def new_embed_session(origin: str, return_url: str | None) -> dict:
    return {"origin": origin, "return_url": return_url, "csrf": secrets.token_urlsafe(32)}


async def _load_partner(connection: ASGIConnection) -> Partner:
    slug = flow_partner(connection) or ""
    async with connection.app.state.db_sessionmaker() as session:
        partner = await partner_by_slug(session, slug)
    if partner is None:
        raise EmbedRefused("unknown_partner")
    allow_framing(connection.scope, partner.allowed_origins, images_from=partner.logo_url)
    if not partner.enabled:
        raise EmbedRefused("disabled_partner")
    return partner


async def _check_csrf(connection: ASGIConnection, expected: str | None) -> None:
    if connection.scope["method"] in SAFE_METHODS:  # type: ignore[typeddict-item]
        return
    sent = connection.headers.get("x-csrftoken")
    if sent is None and isinstance(connection, Request):
        sent = (await connection.form()).get("_csrf_token")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise EmbedRefused("csrf")


async def requires_partner_session(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Every embedded route: a known, enabled partner, and framing for its origins only.

    All but the start route also need that partner's embedded session, and a valid CSRF token if unsafe.
    """
    partner = await _load_partner(connection)
    data = embed_session(connection)
    origin = data.get("origin") if data.get("origin") in partner.allowed_origins else partner.allowed_origins[0]
    connection.scope["state"][EMBED_STATE_KEY] = EmbedContext(  # type: ignore[typeddict-unknown-key]
        partner, Theme(partner.primary_color, partner.theme_mode), origin, data.get("return_url")
    )
    if handler.opt.get(STARTS_SESSION):
        return
    chosen = supported(connection.query_params.get("lang"))
    if chosen and isinstance(connection.scope.get("session"), dict):  # the `lang` cookie is not sent in a frame
        connection.scope["session"][LOCALE_SESSION_KEY] = chosen  # type: ignore[index]
    if person_of(connection) is None or not data:
        raise EmbedRefused("session_ended")
    ScopeState.from_scope(connection.scope).csrf_token = data.get("csrf")
    await _check_csrf(connection, data.get("csrf"))
