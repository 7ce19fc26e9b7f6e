"""Logging for the whole process through structlog's standard-logging integration, and the request id.

JSON lines in production, readable lines in development; third-party loggers (uvicorn, httpx, SQLAlchemy) go
through the same formatter. Every line logged while a request is handled carries its `request_id` and, where
the code knows it, the `order` (an externalOrderId), from context variables.
"""

import logging
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def instance_id() -> str:
    """This process as operators see it (`host:pid`): on every JSON log line, the job board and `/operations`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def add_instance(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.setdefault("instance", instance_id())  # read per line: each worker of `serve --workers` is its own
    return event


SECRET_QUERY = "secret_query"  # noqa: S105 (a route mark, not a secret)
"""`opt={SECRET_QUERY: True}` on a route: its query string carries a secret or personal data (an OIDC code and
state, a partner's launch token, what support searched for), so access lines never show it."""
_secret_query_paths: set[str] = set()
_secret_queries = re.compile(r"(?!)")


def redact_queries_on(path_formats: Iterable[str]) -> None:
    """Redact the query strings of these route paths (`/embed/{slug}/start`) from access lines from now on."""
    global _secret_queries
    for path in path_formats:
        _secret_query_paths.add(re.sub(r"\\\{[^}]*\\\}", "[^/?]+", re.escape(path.rstrip("/"))))
    if _secret_query_paths:
        _secret_queries = re.compile(rf"^(?:{'|'.join(sorted(_secret_query_paths))})/?\?")


class RedactSecretQueries(logging.Filter):
    """Uvicorn's access log prints the whole path: drop the query string of the routes marked `SECRET_QUERY`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            path = record.args[2]
            if _secret_queries.match(path):
                record.args = (*record.args[:2], path.split("?", 1)[0] + "?[redacted]", *record.args[3:])
        return True


WIRE_LEVEL_LOGGERS = ("sqlalchemy.engine", "aiosqlite", "httpcore", "hpack", "asyncio", "aiosmtplib", "mail.log")
"""Libraries whose DEBUG lines hold result rows, SQL parameters, headers or mail: never below INFO, whatever
LOG_LEVEL says (SQLAlchemy's INFO lines are statements, their parameters hidden by the engine)."""


def configure_logging(*, json: bool, level: int = logging.INFO, access: bool = True) -> None:
    """Send every logger's records to stderr as JSON lines (`json`) or readable lines.

    `access`: uvicorn's line per request (`LOG_ACCESS`), decided here because a worker sets its logging up after
    uvicorn did.
    """
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared = [*SHARED_PROCESSORS, add_instance] if json else SHARED_PROCESSORS  # a console shows one process
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up chatter on every start
    for name in WIRE_LEVEL_LOGGERS:  # at DEBUG these repeat every statement's parameters and every header
        # Only raised: at INFO and above they keep their own defaults (SQLAlchemy's is WARNING: no statements).
        logging.getLogger(name).setLevel(logging.INFO if level < logging.INFO else logging.NOTSET)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    access_lines = logging.getLogger("uvicorn.access")
    # Off, the access logger reaches no handler: uvicorn asks `hasHandlers()` per connection and then makes no
    # record at all (a filter dropping each request's record cost ~2 % of an IPN's CPU, docs/PERFORMANCE.md).
    access_lines.propagate = access
    if not any(isinstance(existing, RedactSecretQueries) for existing in access_lines.filters):
        access_lines.addFilter(RedactSecretQueries())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


@contextmanager
def about_order(external_order_id: str | None) -> Iterator[None]:
    """Every line logged inside names the order."""
    if not external_order_id:
        yield
        return
    with structlog.contextvars.bound_contextvars(order=external_order_id[:64]):
        yield


def bind_order(external_order_id: str) -> None:
    """Name the order on every further line of this request (request handlers only: a job loops over orders)."""
    structlog.contextvars.bind_contextvars(order=external_order_id[:64])


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_of(scope: Scope, *, trust_header: bool) -> str:
    """The proxy's `X-Request-ID` when we are told to trust it and it looks like an id, else a new one."""
    if trust_header:
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER.encode() and REQUEST_ID_SHAPE.fullmatch(value.decode("latin-1")):
                return value.decode("latin-1")
    return new_request_id()


def with_request_id(app: ASGIApp, *, trust_header: bool) -> ASGIApp:
    """Wrap the app's whole ASGI handler (404s included): bind the request id for its log lines, echo it back."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope, trust_header=trust_header)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await app(scope, receive, send_with_id)

    return handle
