"""`/login`, `/auth/callback`, `/logout`: every failure is a friendly page that changes nothing."""

import logging
import secrets
import time
from typing import Annotated, Any, TypeAlias

from litestar import Controller, Request, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template

from webapp.auth.guards import CSRF_SESSION_KEY, csrf_token_for_sign_in, person_of, safe_next, session_of
from webapp.auth.oidc import OidcClient, OidcError, PendingLogin
from webapp.auth.pending import CALLBACK_PATH, PENDING_COOKIE, pending_cookie, seal, unseal
from webapp.auth.service import record_sign_in, roles_for
from webapp.auth.session import CurrentUser, session_id_token, signed_in_session
from webapp.config import AppSettings
from webapp.db import DbSession
from webapp.i18n import LOCALE_COOKIE, LOCALE_SESSION_KEY, supported
from webapp.logs import SECRET_QUERY
from webapp.sessions import announce_session_end, from_session, rotate_session_id, to_session

logger = logging.getLogger(__name__)

Oidc: TypeAlias = NamedDependency[OidcClient]
PENDING_KEY = "oidc"
NEXT_KEY = "next"
# Which failures are the IdP's fault (502) and which the request's (400/403).
FAILURE_STATUS = {"idp_unreachable": 502, "token_failed": 502, "email_unverified": 403, "no_email": 403}


def failure_page(error: OidcError) -> Template:
    logger.warning("sign-in failed: %s", error)  # reason and exception class only, never a token
    return Template(
        template_name="auth/error.html",
        context={"reason": error.reason},
        status_code=FAILURE_STATUS.get(error.reason, 400),
    )


class AuthController(Controller):
    @get("/login", name="auth.login")
    async def login(
        self,
        request: Request,
        oidc: Oidc,
        settings: AppSettings,
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Response[Any]:
        target = safe_next(next_path)
        if person_of(request) is not None:
            return Redirect(target)
        try:
            url, pending = await oidc.start()
        except OidcError as error:
            return failure_page(error)
        sealed = seal({PENDING_KEY: to_session(pending), NEXT_KEY: target}, settings.session.secret.get_secret_value())
        return Redirect(url, cookies=[pending_cookie(sealed, secure=settings.is_production)])

    @get(CALLBACK_PATH, name="auth.callback", opt={SECRET_QUERY: True})
    async def callback(
        self,
        request: Request,
        oidc: Oidc,
        settings: AppSettings,
        db_session: DbSession,
        code: FromQuery[str | None] = None,
        error: FromQuery[str | None] = None,
        oauth_state: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> Response[Any]:
        # The sign-in in progress is cleared whatever happens next, so a callback URL works once only.
        kept = unseal(request.cookies.get(PENDING_COOKIE), settings.session.secrets) or {}
        pending = from_session(PendingLogin, kept.get(PENDING_KEY))
        target = safe_next(kept.get(NEXT_KEY))
        cleared = pending_cookie("", secure=settings.is_production)
        try:
            if error:
                raise OidcError("idp_error", error[:64])
            if pending is None or not oauth_state or not secrets.compare_digest(oauth_state, pending.state):
                raise OidcError("state_mismatch")
            if not code:
                raise OidcError("missing_code")
            identity = await oidc.finish(code=code, pending=pending)
        except OidcError as failure:
            page = failure_page(failure)
            page.cookies.append(cleared)
            return page
        user = await record_sign_in(db_session, identity, supported(request.cookies.get(LOCALE_COOKIE)))
        signed_in = CurrentUser(
            id=user.id or 0,
            email=identity.email,
            roles=roles_for(identity.email, identity.claims, settings),
            signed_in_at=time.time(),
        )
        csrf_token, csrf_cookies = csrf_token_for_sign_in(request)
        request.clear_session()
        rotate_session_id(request)
        # Later unsafe requests must bring this session's own token, no other.
        kept = {CSRF_SESSION_KEY: csrf_token} | ({LOCALE_SESSION_KEY: user.locale} if user.locale else {})
        request.set_session({**signed_in_session(signed_in, identity.id_token), **kept})
        logger.info("signed in user %s with roles %s", user.id, sorted(signed_in.roles))
        return Redirect(target, cookies=[cleared, *csrf_cookies])

    @post("/logout", name="auth.logout", status_code=303)
    async def logout(
        self, request: Request, oidc: Oidc, settings: AppSettings, channels: NamedDependency[ChannelsPlugin]
    ) -> Redirect:
        id_token, ended = session_id_token(request), session_of(request)
        request.clear_session()
        announce_session_end(channels, ended)  # its live streams, on every instance, end now
        home = f"{settings.public_base_url.rstrip('/')}/"
        return Redirect(await oidc.end_session_url(id_token, home) or "/", status_code=303)
