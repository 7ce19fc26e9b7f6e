"""Exceptions become localised error pages (or an htmx fragment); a 5xx page never shows the exception text."""

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

logger = logging.getLogger(__name__)

PAGES = {403: "errors/403.html", 404: "errors/404.html", 500: "errors/500.html"}
GENERIC_CLIENT_ERROR_PAGE = "errors/4xx.html"


def error_template(status_code: int, *, htmx: bool) -> str:
    if htmx:
        return "errors/_error.html"
    if status_code >= 500:
        return PAGES[500]
    return PAGES.get(status_code, GENERIC_CLIENT_ERROR_PAGE)


def handle_exception(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        status_code = exc.status_code
        headers = exc.headers or {}
    else:
        status_code = exc.status_code if isinstance(exc, HTTPException) else HTTP_500_INTERNAL_SERVER_ERROR
        headers = {}
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    is_htmx = request.headers.get("hx-request") == "true"
    return Template(
        template_name=error_template(status_code, htmx=is_htmx),
        context={"status_code": status_code},
        status_code=status_code,
        headers=headers,
    )
