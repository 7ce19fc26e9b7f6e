"""Access-log lines never carry an OIDC code, a launch token or what support searched for; library loggers
stay quiet at the default level."""

import logging
from collections.abc import Iterator

import pytest

from webapp.app import create_app
from webapp.config import Settings
from webapp.logs import WIRE_LEVEL_LOGGERS, RedactSecretQueries, configure_logging


def access_record(path: str) -> logging.LogRecord:
    args = ("127.0.0.1:5000", "GET", path, "1.1", 302)
    return logging.LogRecord("uvicorn.access", logging.INFO, "h11_impl.py", 1, '%s - "%s %s HTTP/%s" %d', args, None)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/auth/callback?code=SECRETCODE&state=SECRETSTATE", "/auth/callback?[redacted]"),
        ("/embed/acme/start?token=eyJhbGciOi.SECRET.SIG&origin=x", "/embed/acme/start?[redacted]"),
        ("/orders/?page=2", "/orders/?page=2"),
        ("/support/?q=SECRET@example.com", "/support/?[redacted]"),
        ("/support?q=SECRET@example.com", "/support?[redacted]"),
        ("/support/export.csv?q=SECRET@example.com", "/support/export.csv?[redacted]"),
        ("/embed/acme/orders/?page=2", "/embed/acme/orders/?page=2"),
        ("/support/orders/abc?lang=vi", "/support/orders/abc?lang=vi"),
    ],
)
def test_secret_query_strings_are_redacted_from_access_lines(settings: Settings, path: str, shown: str) -> None:
    """The routes marked `SECRET_QUERY` (the app names them to the filter when it is built), and only those."""
    create_app(settings)
    record = access_record(path)
    assert RedactSecretQueries().filter(record)
    message = record.getMessage()
    assert shown in message
    assert "SECRET" not in message


@pytest.fixture
def logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    kept = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in WIRE_LEVEL_LOGGERS})
    yield
    root.handlers[:] = kept[0]
    root.setLevel(kept[1])
    for name, level in kept[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(("level", "statements_logged"), [(logging.INFO, False), (logging.DEBUG, True)])
def test_sql_statements_are_logged_only_when_asked_for_and_never_their_rows(
    logging_restored: None, level: int, statements_logged: bool
) -> None:
    """At the default level every statement would cost a log line on the hot path; at DEBUG they show, capped
    at INFO (statements, parameters hidden), never SQLAlchemy's DEBUG lines (result rows)."""
    configure_logging(json=True, level=level)
    engine = logging.getLogger("sqlalchemy.engine.Engine")
    assert engine.isEnabledFor(logging.INFO) is statements_logged
    assert not engine.isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize("access", [True, False])
def test_with_access_lines_off_uvicorn_makes_no_record_for_a_request(logging_restored: None, access: bool) -> None:
    """uvicorn logs a request's line only when its access logger has a handler (asked once per connection): off,
    no record is made and dropped on every request."""
    configure_logging(json=True, access=access)
    try:
        assert logging.getLogger("uvicorn.access").hasHandlers() is access
    finally:
        configure_logging(json=True)
