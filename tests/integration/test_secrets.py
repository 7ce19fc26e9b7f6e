"""The whole flow with every logger at DEBUG: no log line, page, fragment or error holds a secret.

Secrets: our RSA private key, `secretKey`, the webhook secret key, `SESSION_SECRET`, a partner's launch and
webhook secrets and its launch token, the session id, the OIDC code and state, and the id_token.
"""

import json
import logging
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import OctKey
from sqlmodel import select

from tests.builders import PARTNER_SECRETS
from tests.conftest import RsaKeys
from tests.embed_tokens import HS_SECRET, mint
from tests.integration.conftest import SANDBOX_SECRET, LiveApp
from tests.integration.flow import Db, place_order
from tests.processes import async_wait_for
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.logs import WIRE_LEVEL_LOGGERS, configure_logging
from webapp.sessions import HttpSession


def app_records(caplog: pytest.LogCaptureFixture, app: LiveApp, authorize: str) -> list[logging.LogRecord]:
    """Every record but the test's own HTTP client lines: it plays the browser, whose address bar holds the code."""
    return [
        record
        for record in caplog.records
        if not (record.name == "httpx" and (app.url in record.getMessage() or authorize in record.getMessage()))
    ]


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Logging as `LOG_LEVEL=DEBUG` sets it up before the app starts, every line also kept for the test."""
    root = logging.getLogger()
    kept = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in WIRE_LEVEL_LOGGERS})
    configure_logging(json=True, level=logging.DEBUG)
    root.addHandler(caplog.handler)
    yield
    root.handlers[:], _, levels = kept
    root.setLevel(kept[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_nothing_secret_is_logged_or_shown_at_debug(
    debug_logging: None, live_app: LiveApp, db: Db, rsa_keys: RsaKeys, caplog: pytest.LogCaptureFixture
) -> None:
    pages: list[str] = []

    client = live_app.client()
    start = await client.get("/login")
    authorize = start.headers["location"]
    chosen = httpx.post(authorize, data={"sub": "user@example.com"}, follow_redirects=False)
    callback = chosen.headers["location"].removeprefix(live_app.url)
    code, state = (parse_qs(urlsplit(callback).query)[name][0] for name in ("code", "state"))
    signed_in = await client.get(callback)
    assert signed_in.status_code == 302, signed_in.text

    order_id = await place_order(client)
    await db.final(order_id, "SUCCESS")
    for path in ("/", f"/orders/{order_id}", f"/orders/{order_id}/status", f"/orders/{order_id}/printable", "/orders"):
        pages.append((await client.get(path)).text)
    pages.append((await client.get("/no-such-page")).text)
    pages.append((await client.get("/orders/new", headers={"hx-request": "true"})).text)
    pages.append((await client.post("/orders/review", data={"amount": "x"})).text)  # CSRF refusal page

    async with db.sessionmaker() as session, session.begin():
        partner = await save_partner(
            session,
            PartnerSpec(
                slug="acme",
                name="Acme",
                origins=["https://wallet.acme.example"],
                token_alg="HS256",
                token_key=HS_SECRET,
                webhook_url="https://api.acme.example/hooks",
            ),
            PARTNER_SECRETS,
        )
        webhook_secret = PARTNER_SECRETS.webhook_secrets(partner)[0]
    launch = mint(OctKey.import_key(HS_SECRET), aud=live_app.url, jti=str(uuid.uuid4()))
    embedded = live_app.client()
    started = await embedded.get("/embed/acme/start", params={"token": launch})
    pages.append(started.text)
    pages.append((await embedded.get("/embed/acme/start", params={"token": launch})).text)  # replayed: refused
    pages.append((await client.post("/ipn/alixpay", content=b'{"externalOrderId": "x"')).text)

    async def session_row() -> HttpSession | None:
        async with db.sessionmaker() as session:
            return (await session.exec(select(HttpSession))).first()

    row = await async_wait_for(session_row, what="the session row")
    id_token = json.loads(row.data)["id_token"]
    pem_lines = [line for line in rsa_keys.partner.private.read_text().splitlines() if not line.startswith("-----")]
    secrets = {
        "private key line": pem_lines[len(pem_lines) // 2],
        "secretKey": SANDBOX_SECRET,
        "webhook secret key": live_app.settings.alixpay.webhook_secret_key.get_secret_value(),
        "SESSION_SECRET": live_app.settings.session.secret.get_secret_value(),
        "partner launch secret": HS_SECRET,
        "partner webhook secret": webhook_secret,
        "launch token": launch,
        "session id": client.cookies["session"],
        "OIDC code": code,
        "OIDC state": state,
        "id_token": id_token,
        "id_token signature": id_token.rsplit(".", 1)[1],
    }
    records = app_records(caplog, live_app, authorize.split("?")[0])
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in records)
    loggers = {name: sorted({r.name for r in records if secret in r.getMessage()}) for name, secret in secrets.items()}
    assert len(records) > 100  # DEBUG really was on: SQL, HTTP clients, the app's own lines
    found = [
        f"{name} in {where} {loggers[name] if where == 'the log' else ''}"
        for name, secret in secrets.items()
        for where, text in (("the log", logged), *((f"page {index}", page) for index, page in enumerate(pages)))
        if secret in text
    ]
    assert found == [], "\n".join(found)
