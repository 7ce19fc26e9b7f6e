"""Access-log lines never carry an OIDC code, a launch token or what support searched for."""

import logging

import pytest

from webapp.logs import RedactSecretQueries


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
        ("/support/orders/abc?lang=vi", "/support/orders/abc?lang=vi"),
    ],
)
def test_secret_query_strings_are_redacted_from_access_lines(path: str, shown: str) -> None:
    record = access_record(path)
    assert RedactSecretQueries().filter(record)
    message = record.getMessage()
    assert shown in message
    assert "SECRET" not in message
