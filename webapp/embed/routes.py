"""The hosted flow under `/embed/{partner}/`: the launch route, the return to the partner, and the order pages.

The order pages are our own (`OrderController`), registered a second time here: this router gives them the
embedded session cookie, the partner guard and framing; the templates pick the chrome-less, themed layout.
"""

import logging
import time
from typing import Any

from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from webapp.auth.guards import SignedInRequest
from webapp.auth.middleware import authentication
from webapp.auth.session import CurrentUser, session_owner, signed_in_session
from webapp.config import AppSettings, Settings
from webapp.db import Sessionmaker
from webapp.embed.access import (
    EMBED_SESSION_KEY,
    STARTS_SESSION,
    EmbedRefused,
    embed_context,
    new_embed_session,
    requires_partner_session,
)
from webapp.embed.launch import redeem_ticket, spend_launch_token
from webapp.embed.partners import PartnerSecrets
from webapp.embed.signatures import signed_return_url
from webapp.embed.tokens import LaunchRefused, verify_launch_token
from webapp.flows import EMBED_PREFIX, flow_path
from webapp.i18n import LOCALE_SESSION_KEY, supported
from webapp.logs import SECRET_QUERY
from webapp.orders.routes import PREFILL_KEY, OrderController, own_order
from webapp.sessions import EMBED_SESSION_COOKIE, PartitionedSessionConfig, rotate_session_id

logger = logging.getLogger(__name__)


@get("/start", name="embed.start", opt={STARTS_SESSION: True, SECRET_QUERY: True})
async def start(
    request: Request,
    settings: AppSettings,
    db_sessionmaker: Sessionmaker,
    partner_secrets: NamedDependency[PartnerSecrets],
    token: FromQuery[str] = "",
    ticket: FromQuery[str] = "",
    origin: FromQuery[str | None] = None,
) -> Response[Any]:
    """Open an embedded session for the person a partner's launch token names, then show the cash-out form.

    Or a launch ticket's: the partner's server asked for it through the partner API instead of signing a token.
    `origin` says which of the partner's origins frames us (events are posted to it alone); by default the first.
    """
    context = embed_context(request)
    assert context is not None  # set by requires_partner_session  # noqa: S101
    partner = context.partner
    try:
        if ticket:
            claims = await redeem_ticket(db_sessionmaker, partner, ticket)
        else:
            claims = verify_launch_token(
                token,
                slug=partner.slug,
                keys=partner_secrets.launch_keys(partner),
                audience=settings.public_base_url,
                return_urls=partner.return_urls,
                now=time.time(),
            )
        if origin is not None and origin not in partner.allowed_origins:
            raise LaunchRefused("malformed", "origin is not one of the partner's")
        user = await spend_launch_token(db_sessionmaker, partner, claims)
    except LaunchRefused as refused:
        logger.warning("launch token refused for partner %s: %s", partner.slug, refused)
        raise EmbedRefused(refused.reason) from refused
    signed_in = CurrentUser(
        id=user.id or 0,
        email=claims.email,
        roles=frozenset({"user"}),
        signed_in_at=time.time(),
        partner=partner.slug,
        partner_id=partner.id,
        partner_user_id=claims.subject,
        partner_reference=claims.reference,
    )
    request.clear_session()
    rotate_session_id(request)
    request.set_session(
        {
            **signed_in_session(signed_in, None),
            EMBED_SESSION_KEY: new_embed_session(origin or partner.allowed_origins[0], claims.return_url),
            LOCALE_SESSION_KEY: supported(claims.locale),
            PREFILL_KEY: {"amount": str(claims.amount)} if claims.amount else {},
        }
    )
    logger.info("embedded session opened for partner %s, user %s", partner.slug, user.id)
    # `launched`: the page tells the partner's page `ready`, once per frame (embed.js).
    return Redirect(flow_path(request, "orders.new") + "?launched=1", status_code=303)


@get("/orders/{order_id:str}/return", name="embed.return")
async def return_to_partner(
    request: SignedInRequest,
    db_sessionmaker: Sessionmaker,
    partner_secrets: NamedDependency[PartnerSecrets],
    order_id: FromPath[str],
) -> Redirect:
    """Redirect mode: back to the partner's `return_url` with the order id and status, signed."""
    context = embed_context(request)
    if context is None or not context.return_url:
        raise NotFoundException()
    async with db_sessionmaker() as session:
        order = await own_order(session, order_id, request)
    url = signed_return_url(
        partner_secrets.webhook_secrets(context.partner),
        context.return_url,
        order_id=order.external_order_id,
        status=order.status,
        timestamp=int(time.time()),
    )
    return Redirect(url, status_code=303)


def embed_router(settings: Settings) -> Router:
    session = PartitionedSessionConfig(
        key=EMBED_SESSION_COOKIE,
        path=EMBED_PREFIX,
        store="sessions",
        max_age=settings.session.idle_timeout_seconds,
        renew_on_access=True,
        httponly=True,
        samesite="none",
        secure=True,  # browsers accept Secure cookies from http://localhost and 127.0.0.1, so development works
        owner_of=session_owner,
    )
    return Router(
        path=EMBED_PREFIX + "/{partner:str}",
        route_handlers=[start, return_to_partner, OrderController],
        guards=[requires_partner_session],
        middleware=[session.middleware, authentication()],
    )
