"""Errors of the partner API as RFC 9457 problem details (`application/problem+json`), each with a stable code.

`type` is `/api/partner/v1/docs#<code>` (the code's entry on the API's page); `code` repeats it for clients that
switch on a word. Nothing of an exception's text reaches a client: a 5xx says only that it failed, and when.
"""

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from msgspec import Struct

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/partner/v1"
DOCS_PATH = f"{API_PREFIX}/docs"

PROBLEMS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "The request is not valid"),
    "unauthorized": (401, "A valid API key is needed"),
    "not_found": (404, "No such resource"),
    "method_not_allowed": (405, "This method is not allowed here"),
    "idempotency_conflict": (409, "This Idempotency-Key was used with another request"),
    "rate_limited": (429, "Too many requests with this API key"),
    "server_error": (500, "The request failed on our side"),
}
"""Every code the API answers with: its HTTP status and title (the docs page lists them)."""
BY_STATUS = {status: code for code, (status, _title) in PROBLEMS.items()}


class ProblemDetails(Struct):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem documents a route may answer with, for its OpenAPI description (titled as in `PROBLEMS`)."""
    return {
        status: ResponseSpec(ProblemDetails, description=PROBLEMS[BY_STATUS[status]][1], media_type=PROBLEM_MEDIA_TYPE)
        for status in statuses
    }


class Problem(Exception):
    def __init__(self, code: str, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code, self.detail, self.headers = code, detail, headers or {}


def problem_response(code: str, detail: str | None = None, headers: dict[str, str] | None = None) -> Response[Any]:
    status, title = PROBLEMS[code]
    body = ProblemDetails(type=f"{DOCS_PATH}#{code}", title=title, status=status, code=code, detail=detail)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers or {})


def is_api_request(request: Request[Any, Any, Any]) -> bool:
    """A request for the partner API, routed or not (an unknown path there is answered as a problem too)."""
    return request.url.path.startswith(f"{API_PREFIX}/")


def answer_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """An HTTP error on the partner API as a problem document (used by the app's handler for unrouted paths)."""
    return _http(request, exc)


def _problem(_request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem_response(exc.code, exc.detail, exc.headers)


def _validation(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Which parameter was wrong and why, in Litestar's words (never the value sent)."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    reasons = [f"{item.get('key', '?')}: {item.get('message', 'invalid')}" for item in extra if isinstance(item, dict)]
    return problem_response("invalid_request", "; ".join(reasons) or None)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return _server_error(request, exc)
    code = BY_STATUS.get(exc.status_code, "invalid_request")
    headers = dict(exc.headers or {})
    if exc.status_code == 429:  # Litestar's rate limit: when to come back
        headers.setdefault("Retry-After", headers.get("RateLimit-Reset", "60"))
    return problem_response(code, None, headers)


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("partner API: unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response("server_error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    Problem: _problem,
    ValidationException: _validation,
    NotFoundException: _http,
    HTTPException: _http,
    Exception: _server_error,
}
