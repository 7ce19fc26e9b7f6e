"""`POST /api/partner/v1/sessions`: the partner's server asks for a launch URL instead of signing a token.

The person's email (verified by the partner), the partner's user id, and what the launch token could carry
(amount, return URL, locale, reference) go in; a single-use URL valid for five minutes comes out, as Transak's
server-made widget URLs. Its content is checked as a token's claims (`embed/tokens.py::launch_claims`).
"""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, post
from litestar.params import HeaderParameter, JSONBody
from msgspec import Meta, Struct
from sqlalchemy.exc import IntegrityError

from webapp.config import AppSettings
from webapp.db import Sessionmaker
from webapp.embed.launch import issue_ticket
from webapp.embed.tokens import REFERENCE, LaunchRefused
from webapp.partner_api.idempotency import remember, request_digest, stored_answer
from webapp.partner_api.problems import Problem, problem_responses
from webapp.partner_api.routes import ApiPartner


class SessionRequest(Struct, rename="camel", forbid_unknown_fields=True):
    """Who is launched (as your launch token would say it), and how their cash-out page starts."""

    email: Annotated[str, Meta(min_length=3, max_length=320)]
    email_verified: bool
    """You verified this email: must be true."""
    user_id: Annotated[str, Meta(min_length=1, max_length=200)]
    """Your id for the person (`partnerUserId` in webhooks)."""
    amount: Annotated[int, Meta(gt=0, le=10**12)] | None = None
    """VND the form starts with."""
    return_url: Annotated[str, Meta(max_length=500)] | None = None
    """One of your registered return URLs (redirect mode)."""
    locale: Annotated[str, Meta(max_length=8)] | None = None
    """en, vi or zh."""
    reference: Annotated[str, Meta(pattern=f"^{REFERENCE.pattern}$")] | None = None
    """Your own id for this cash-out (`partnerReference` in webhooks and orders)."""
    origin: Annotated[str, Meta(max_length=200)] | None = None
    """Which of your registered origins frames the page (default: the first)."""


class LaunchSession(Struct, rename="camel"):
    url: str
    """Open it once (iframe or redirect) within five minutes."""
    expires_at: datetime


def _claims(data: SessionRequest) -> dict[str, Any]:
    values = {
        "sub": data.user_id,
        "email": data.email,
        "email_verified": data.email_verified,
        "amount": data.amount,
        "return_url": data.return_url,
        "locale": data.locale,
        "reference": data.reference,
    }
    return {name: value for name, value in values.items() if value is not None}


@post("/sessions", name="partner_api.sessions", status_code=201, responses=problem_responses(400, 401, 409, 429))
async def create_session(
    request: Request[Any, Any, Any],
    partner: ApiPartner,
    db_sessionmaker: Sessionmaker,
    settings: AppSettings,
    data: JSONBody[SessionRequest],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
) -> Response[LaunchSession]:
    """A single-use launch URL for one of your users. With `Idempotency-Key`, a retry gets the same answer."""
    if data.origin is not None and data.origin not in partner.allowed_origins:
        raise Problem("invalid_request", "origin: not one of your registered origins")
    digest = request_digest(request.method, request.url.path, await request.body())
    try:
        async with db_sessionmaker() as session, session.begin():
            if idempotency_key and (replay := await stored_answer(session, partner.id or 0, idempotency_key, digest)):
                return replay
            try:
                ticket, expires_at = await issue_ticket(session, partner, _claims(data))
            except LaunchRefused as refused:
                raise Problem("invalid_request", str(refused)) from refused
            query = {"ticket": ticket} | ({"origin": data.origin} if data.origin else {})
            start = request.app.route_reverse("embed.start", partner=partner.slug)
            answer = LaunchSession(f"{settings.public_base_url.rstrip('/')}{start}?{urlencode(query)}", expires_at)
            if idempotency_key:
                remember(session, partner.id or 0, idempotency_key, digest, 201, msgspec.json.encode(answer))
    except IntegrityError:  # a request with the same key committed first: its answer, or a conflict
        async with db_sessionmaker() as session:
            replay = await stored_answer(session, partner.id or 0, idempotency_key or "", digest)
        if replay is None:
            raise
        return replay
    return Response(answer, status_code=201)
