"""Exceptions become localised error pages (or an htmx fragment); a 5xx page never shows the exception text.

One handler per exception type, in `EXCEPTION_HANDLERS`; Litestar picks the most specific for each exception.
"""

import logging
from urllib.parse import urlencode

from litestar import Response
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from webapp.auth.guards import LoginRequired
from webapp.embed.access import EmbedRefused
from webapp.partner_api.problems import answer_http_error, is_api_request

logger = logging.getLogger(__name__)

PAGES = {403: "errors/403.html", 404: "errors/404.html", 429: "errors/429.html", 500: "errors/500.html"}
GENERIC_CLIENT_ERROR_PAGE = "errors/4xx.html"


def error_template(status_code: int, *, htmx: bool) -> str:
    if htmx:
        return "errors/_error.html"
    if status_code >= 500:
        return PAGES[500]
    return PAGES.get(status_code, GENERIC_CLIENT_ERROR_PAGE)


def error_page(request: HTMXRequest, status_code: int, headers: dict[str, str] | None = None) -> Template:
    return Template(
        template_name=error_template(status_code, htmx=bool(request.htmx)),
        context={"status_code": status_code},
        status_code=status_code,
        headers=headers or {},
    )


def login_redirect(request: HTMXRequest, _exc: LoginRequired) -> Response:
    """Send an anonymous visitor to sign in and back to the page they asked for (htmx: a full-page redirect)."""
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login_url = f"{request.app.route_reverse('auth.login')}?{urlencode({'next': next_path})}"
    if request.htmx:
        return Response(content=None, status_code=401, headers={"HX-Redirect": login_url})
    return Redirect(login_url, status_code=303)


def embed_refused(_request: HTMXRequest, exc: EmbedRefused) -> Response:
    """A refused embedded request: why, in the partner's frame and the person's language."""
    return Template(
        template_name="embed/error.html",
        context={"reason": exc.reason, "status_code": exc.status_code},
        status_code=exc.status_code,
    )


def http_error(request: HTMXRequest, exc: HTTPException) -> Response:
    if is_api_request(request):  # a path under the partner API that no route matched: JSON, as the API answers
        return answer_http_error(request, exc)
    if exc.status_code >= 500:
        return server_error(request, exc)
    headers = dict(exc.headers or {})
    if exc.status_code == 429:  # a rate limit: say when to come back, as well as Litestar's RateLimit-* headers
        headers.setdefault("Retry-After", headers.get("RateLimit-Reset", "60"))
    return error_page(request, exc.status_code, headers)


def server_error(request: HTMXRequest, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    status_code = exc.status_code if isinstance(exc, HTTPException) else HTTP_500_INTERNAL_SERVER_ERROR
    return error_page(request, status_code)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LoginRequired: login_redirect,
    EmbedRefused: embed_refused,
    HTTPException: http_error,
    Exception: server_error,
}
