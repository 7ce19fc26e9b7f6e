"""Every HTTP request counted and timed by method, route template and status, except live streams.

The series are the ones Litestar's Prometheus middleware exported under `prefix="cashout_http"` with grouped paths
(names and labels unchanged for dashboards and `docs/ops/alerts.yml`). That middleware builds a `Request`, two label
dicts and four labelled children on every request, ~35 µs of a request's ~140 µs in-process (docs/PERFORMANCE.md,
the request path); here each route's children are looked up once per method, route and status, then kept.
"""

import time
from collections.abc import Iterable
from functools import cache
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from webapp.metrics import HTTP_ERRORS, HTTP_IN_PROGRESS, HTTP_REQUEST_SECONDS, HTTP_REQUESTS

APP_NAME = "cashout"
"""The `app_name` label every series carries (as Litestar's did)."""
SERVER_ERROR = 500


@cache
def _in_progress(method: str, path: str) -> Any:
    return HTTP_IN_PROGRESS.labels(method, path, 200, APP_NAME)


@cache
def _finished(method: str, path: str, status: int) -> tuple[Any, Any, Any | None]:
    """The children a finished request adds to: its count, its duration, and its error count if it is a 5xx."""
    labels = (method, path, status, APP_NAME)
    errors = HTTP_ERRORS.labels(*labels) if status >= SERVER_ERROR else None
    return HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_SECONDS.labels(*labels), errors


class RequestMetrics(ASGIMiddleware):
    """Counted everywhere but under the `skipped` path prefixes and on routes marked `opt={exclude_opt_key: True}`."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, *, skipped: Iterable[str], exclude_opt_key: str) -> None:
        prefixes = tuple(skipped)
        self.should_bypass_for_scope = lambda scope: scope["path"].startswith(prefixes)
        self.exclude_opt_key = exclude_opt_key

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method, path = scope["method"], scope["path_template"]  # type: ignore[typeddict-item]
        started = time.perf_counter()
        status, duration, answered = 200, 0.0, False

        async def counted(message: Message) -> None:
            nonlocal status, duration, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started  # until the last part of the body
            await send(message)

        in_progress = _in_progress(method, path)
        in_progress.inc()
        try:
            await next_app(scope, receive, counted)
        except Exception as exc:  # a middleware inside refused (CSRF): the app's handlers answer further out
            if not answered:
                status = exc.status_code if isinstance(exc, HTTPException) else SERVER_ERROR
            raise
        finally:
            in_progress.dec()
            count, seconds, errors = _finished(method, path, status)
            if errors is not None:
                errors.inc()
            count.inc()
            seconds.observe(duration)
