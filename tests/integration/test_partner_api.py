"""The partner API: API keys (hashed, revocable, per partner), orders read and paged, problems, the OpenAPI page."""

import asyncio
import json
import re
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import select

from tests.builders import PARTNER_SECRETS, make_order
from tests.conftest import create_schema
from tests.integration.conftest import LiveApp, both_databases
from tests.integration.flow import Db, signed_in_client
from tests.integration.test_support import audit_rows, csrf
from webapp.__main__ import main
from webapp.app import create_app
from webapp.auth.models import User
from webapp.config import Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.embed.models import LaunchTicket, WebhookAttempt, WebhookEvent
from webapp.embed.partners import PartnerSpec, partner_by_slug, save_partner, set_enabled
from webapp.orders.models import Order, OrderTransition
from webapp.partner_api.keys import make_key, revoke_key
from webapp.partner_api.models import PartnerApiKey

API = "/api/partner/v1"


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.app: Litestar = create_app(settings)
        self.engine = make_engine(settings.database.url)
        self.sessionmaker = make_sessionmaker(self.engine)

    def client(self, key: str | None = None) -> AsyncTestClient[Litestar]:
        client = AsyncTestClient(app=self.app, base_url="https://cashout.test")
        if key:
            client.headers["authorization"] = f"Bearer {key}"
        return client

    async def partner(self, slug: str) -> tuple[int, str]:
        """A partner with one API key: (its id, the key)."""
        async with self.sessionmaker() as session, session.begin():
            spec = PartnerSpec(slug, slug.title(), [f"https://{slug}.example"], "HS256")
            partner = await save_partner(session, spec, PARTNER_SECRETS)
            return partner.id or 0, (await make_key(session, partner, "server")).plain

    async def orders(self, partner_id: int, count: int, **overrides: Any) -> list[str]:
        async with self.sessionmaker() as session, session.begin():
            user = User(issuer=f"partner:{partner_id}", subject=f"u{count}{overrides}", email="w@example.com")
            session.add(user)
            await session.flush()
            made = [
                make_order(user_id=user.id, email=user.email, partner_id=partner_id, **overrides) for _ in range(count)
            ]
            session.add_all(made)
        return [order.external_order_id for order in made]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    settings = settings.model_copy(update={"rate_limit_partner_api": 30})
    await create_schema(settings.database.url)
    harness = Harness(settings)
    yield harness
    await harness.engine.dispose()


def assert_problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert (problem["status"], problem["code"], problem["type"]) == (status, code, f"{API}/docs#{code}")
    return problem


async def test_without_a_valid_key_nothing_is_read_and_the_answer_says_how_to_authenticate(api: Harness) -> None:
    partner_id, key = await api.partner("acme")
    await api.orders(partner_id, 1)
    async with api.client() as anonymous:
        refused = await anonymous.get(f"{API}/orders")
        assert_problem(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "set-cookie" not in refused.headers  # no session, no CSRF cookie: a server's client
    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), "cok_abcdefgh_" + "x" * 43, "not a key", key + "x"):
        async with api.client(wrong) as client:
            assert_problem(await client.get(f"{API}/orders"), 401, "unauthorized")
    async with api.client(key) as client:
        assert (await client.get(f"{API}/orders")).status_code == 200
        async with api.sessionmaker() as session, session.begin():
            stored = (await session.exec(select(PartnerApiKey))).one()
            assert key not in json.dumps(stored.model_dump(mode="json"))  # only its hash is stored
            assert stored.last_used_at is not None
            await set_enabled(session, "acme", enabled=False)
        assert_problem(await client.get(f"{API}/orders"), 401, "unauthorized")  # a switched-off partner
        async with api.sessionmaker() as session, session.begin():
            await set_enabled(session, "acme", enabled=True)
            partner = (await session.exec(select(PartnerApiKey))).one()
        assert (await client.get(f"{API}/orders")).status_code == 200
        async with api.sessionmaker() as session, session.begin():
            await revoke_key(session, await partner_by_slug(session, "acme"), partner.prefix)
        assert_problem(await client.get(f"{API}/orders"), 401, "unauthorized")  # revoked: at once


async def test_a_partner_reads_its_own_order_with_timeline_and_figures_and_never_anothers(api: Harness) -> None:
    acme_id, acme_key = await api.partner("acme")
    other_id, _ = await api.partner("other")
    reported = {"tokenTransfer": {"currency": "USDT", "price": 25000, "amount": 4}, "fees": {"systemFee": 0.1}}
    (ours,) = await api.orders(acme_id, 1, provider_order=reported, partner_reference="wd-1", status="SUCCESS")
    (theirs,) = await api.orders(other_id, 1)
    async with api.sessionmaker() as session, session.begin():
        from webapp.orders.models import Order

        order = (await session.exec(select(Order).where(Order.external_order_id == ours))).one()
        at = datetime(2026, 12, 5, 10, tzinfo=UTC)
        for previous, status, source in (
            ("CREATING", "AWAITING_PAYMENT", "create"),
            ("AWAITING_PAYMENT", "SUCCESS", "ipn"),
        ):
            session.add(
                OrderTransition(order_id=order.id, from_status=previous, to_status=status, source=source, at=at)
            )
    async with api.client(acme_key) as client:
        answer = await client.get(f"{API}/orders/{ours}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert (body["id"], body["status"], body["final"], body["outcome"]) == (ours, "SUCCESS", True, "succeeded")
        assert (body["fiatAmount"], body["fiatCurrency"], body["partnerReference"]) == (100000, "VND", "wd-1")
        assert body["token"] == {
            "currency": "USDT",
            "amount": "4.000000",
            "rate": "25000",
            "systemFee": "0.100000",
            "processingFee": None,
            "total": "4.100000",
            "reportedBy": "alixpay",
        }
        assert [(step["previousStatus"], step["status"], step["source"]) for step in body["timeline"]] == [
            ("CREATING", "AWAITING_PAYMENT", "create"),
            ("AWAITING_PAYMENT", "SUCCESS", "ipn"),
        ]
        assert "account" not in answer.text.lower() and "19030413601018" not in answer.text  # no bank details
        for unknown in (theirs, "no-such-order"):
            assert_problem(await client.get(f"{API}/orders/{unknown}"), 404, "not_found")


async def test_orders_come_newest_first_in_pages_that_never_repeat_and_filter_by_status_time_and_reference(
    api: Harness,
) -> None:
    acme_id, key = await api.partner("acme")
    waiting = await api.orders(acme_id, 5)
    failed = await api.orders(acme_id, 2, status="FAIL", partner_reference="wd-7")
    await api.orders((await api.partner("other"))[0], 3)  # another partner's: never listed
    async with api.client(key) as client:
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await client.get(f"{API}/orders", params=params)).json()
            seen += [order["id"] for order in page["orders"]]
            pages, cursor = pages + 1, page["nextCursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == list(reversed(waiting + failed))  # newest first, each once
        first = (await client.get(f"{API}/orders", params={"limit": 4})).json()
        arrived = await api.orders(acme_id, 3)  # new orders while the partner pages through
        rest = (await client.get(f"{API}/orders", params={"limit": 4, "cursor": first["nextCursor"]})).json()
        paged = [order["id"] for order in first["orders"] + rest["orders"]]
        assert paged == seen and not set(arrived) & set(paged)  # nothing repeated, nothing missed, no shift
        by_status = (await client.get(f"{API}/orders", params={"status": "FAIL"})).json()["orders"]
        assert [order["id"] for order in by_status] == list(reversed(failed))
        by_reference = (await client.get(f"{API}/orders", params={"partner_reference": "wd-7"})).json()["orders"]
        assert {order["id"] for order in by_reference} == set(failed)
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert (await client.get(f"{API}/orders", params={"created_after": later})).json()["orders"] == []
        for bad in ({"status": "PAID"}, {"limit": 0}, {"limit": 101}, {"cursor": "garbage"}, {"created_after": "x"}):
            assert_problem(await client.get(f"{API}/orders", params=bad), 400, "invalid_request")
        naive = await client.get(f"{API}/orders", params={"created_after": "2026-12-05T00:00:00"})
        assert "time zone" in assert_problem(naive, 400, "invalid_request")["detail"]


async def test_each_key_has_its_own_rate_limit_answered_as_a_problem_with_retry_after(api: Harness) -> None:
    _, key = await api.partner("acme")
    async with api.sessionmaker() as session, session.begin():
        second = (await make_key(session, await partner_by_slug(session, "acme"), "second")).plain
    async with api.client(key) as client:
        answers = [await client.get(f"{API}/orders") for _ in range(31)]
        assert [answer.status_code for answer in answers[:30]] == [200] * 30
        limited = assert_problem(answers[30], 429, "rate_limited")
        assert limited["title"] and int(answers[30].headers["retry-after"]) > 0
    async with api.client(second) as client:
        assert (await client.get(f"{API}/orders")).status_code == 200  # the other key counts on its own


async def test_the_openapi_document_describes_this_api_only_and_its_page_needs_no_internet(api: Harness) -> None:
    async with api.client() as client:
        document = (await client.get(f"{API}/openapi.json")).json()
        page = await client.get(f"{API}/docs")
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        f"{API}/orders",
        f"{API}/orders/{{order_id}}",
        f"{API}/events",
        f"{API}/events/{{event_id}}/resend",
        f"{API}/sessions",
    }
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert page.status_code == 200 and "content-security-policy" in page.headers
    for path in document["paths"]:
        assert path in page.text
    for code in ("unauthorized", "not_found", "rate_limited", "invalid_request"):
        assert f'id="{code}"' in page.text
    assert not re.findall(r'(?:src|href)="https?://', page.text)  # nothing loaded from elsewhere


async def test_a_partner_reads_its_webhook_events_with_their_attempts_and_sends_one_again(api: Harness) -> None:
    acme_id, key = await api.partner("acme")
    other_id, _ = await api.partner("other")
    (order,) = await api.orders(acme_id, 1)
    (other_order,) = await api.orders(other_id, 1)
    now = datetime.now(UTC)
    async with api.sessionmaker() as session, session.begin():
        ids = {}
        rows = [
            ("evt_a", acme_id, order, "delivered"),
            ("evt_b", acme_id, order, "gave_up"),
            ("evt_x", other_id, other_order, "pending"),
        ]
        for number, (event_id, partner_id, external, state) in enumerate(rows):
            placed = (await session.exec(select(Order).where(Order.external_order_id == external))).one()
            event = WebhookEvent(
                event_id=event_id,
                partner_id=partner_id,
                order_id=placed.id or 0,
                type="order.status",
                payload=json.dumps({"id": event_id, "n": number}),
                state=state,
            )
            session.add(event)
            await session.flush()
            ids[event_id] = event.id
        session.add(WebhookAttempt(event_id=ids["evt_b"], at=now, status_code=500, duration_ms=12))
        session.add(WebhookAttempt(event_id=ids["evt_b"], at=now, status_code=None, error="ConnectTimeout"))
    async with api.client(key) as client:
        events = (await client.get(f"{API}/events")).json()["events"]
        assert [event["id"] for event in events] == ["evt_b", "evt_a"]  # newest first, never another partner's
        failing = events[0]
        assert (failing["orderId"], failing["state"], failing["payload"]) == (order, "gave_up", {"id": "evt_b", "n": 1})
        assert [(a["statusCode"], a["error"]) for a in failing["attempts"]] == [(500, ""), (None, "ConnectTimeout")]
        given_up = (await client.get(f"{API}/events", params={"state": "gave_up", "order_id": order})).json()
        assert [event["id"] for event in given_up["events"]] == ["evt_b"]
        again = await client.post(f"{API}/events/evt_b/resend")
        assert again.status_code == 202 and again.json()["state"] == "pending"
        assert_problem(await client.post(f"{API}/events/evt_x/resend"), 404, "not_found")  # another partner's
        assert_problem(await client.delete(f"{API}/events/evt_b/resend"), 405, "method_not_allowed")
        assert_problem(await client.get(f"{API}/no-such-thing"), 404, "not_found")


SESSION = {"email": "Wallet.User@example.com", "emailVerified": True, "userId": "wallet-7", "reference": "wd-9"}


async def test_a_server_made_launch_url_opens_one_embedded_session_and_a_retried_request_gets_the_same_url(
    api: Harness,
) -> None:
    _, key = await api.partner("acme")
    keyed = {"idempotency-key": "k1"}
    async with api.client(key) as server:
        made = await server.post(f"{API}/sessions", json=SESSION | {"amount": 250_000}, headers=keyed)
        assert made.status_code == 201, made.text
        url = httpx.URL(made.json()["url"])
        assert url.path == "/embed/acme/start" and len(url.params["ticket"]) >= 40
        expires = datetime.fromisoformat(made.json()["expiresAt"])
        assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)
        again = await server.post(f"{API}/sessions", json=SESSION | {"amount": 250_000}, headers=keyed)
        assert again.json() == made.json() and again.headers["idempotent-replayed"] == "true"  # nothing made twice
        other = await server.post(f"{API}/sessions", json=SESSION, headers=keyed)
        assert_problem(other, 409, "idempotency_conflict")
        fresh = await server.post(f"{API}/sessions", json=SESSION)
        assert fresh.json()["url"] != made.json()["url"]  # without a key, each request is its own
    async with api.client() as browser:
        opened = await browser.get(f"{url.path}?{url.query.decode()}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/embed/acme/orders/new?launched=1"
        form = await browser.get("/embed/acme/orders/new")
        assert 'value="250000"' in form.text or "250000" in form.text  # the amount the server asked for
    async with api.client() as replaying:
        replayed = await replaying.get(f"{url.path}?{url.query.decode()}", follow_redirects=False)
        assert replayed.status_code == 403 and "already been used" in replayed.text
    async with api.sessionmaker() as session:
        person = (await session.exec(select(User).where(User.issuer == "partner:acme"))).one()
    assert (person.subject, person.email) == ("wallet-7", "wallet.user@example.com")


@both_databases
async def test_concurrent_requests_with_one_idempotency_key_make_one_launch_and_all_get_its_answer(
    live_app: LiveApp, db: Db
) -> None:
    """Real connections at once to the running app: the one whose answer commits first wins, the others replay it."""
    async with db.sessionmaker() as session, session.begin():
        spec = PartnerSpec("acme", "Acme", ["https://acme.example"], "HS256")
        key = (await make_key(session, await save_partner(session, spec, PARTNER_SECRETS), "race")).plain
    headers = {"authorization": f"Bearer {key}", "idempotency-key": "race"}
    async with httpx.AsyncClient(base_url=live_app.url, timeout=20) as server:
        answers = await asyncio.gather(
            *(server.post(f"{API}/sessions", json=SESSION, headers=headers) for _ in range(8))
        )
    assert {answer.status_code for answer in answers} == {201}, [answer.text for answer in answers]
    assert len({answer.json()["url"] for answer in answers}) == 1
    async with db.sessionmaker() as session:
        assert len((await session.exec(select(LaunchTicket))).all()) == 1
    async with httpx.AsyncClient(base_url=live_app.url, timeout=20) as server:
        keyless = {"authorization": headers["authorization"]}
        posts = [server.post(f"{API}/sessions", json=SESSION, headers=keyless) for _ in range(6)]
        answers = await asyncio.gather(*posts)
    assert [answer.status_code for answer in answers] == [201] * 6  # without a key, each is a launch of its own
    assert len({answer.json()["url"] for answer in answers}) == 6


async def test_a_launch_url_is_refused_when_its_content_would_be_refused_in_a_token_or_it_expired(
    api: Harness,
) -> None:
    _, key = await api.partner("acme")
    async with api.client(key) as server:
        for bad, why in (
            ({"emailVerified": False}, "email_unverified"),
            ({"returnUrl": "https://evil.example/back"}, "return_url_not_allowed"),
            ({"origin": "https://evil.example"}, "origin"),
            ({"reference": "two words"}, "reference"),
            ({"surprise": 1}, "surprise"),
        ):
            refused = assert_problem(await server.post(f"{API}/sessions", json=SESSION | bad), 400, "invalid_request")
            assert why in (refused["detail"] or ""), refused
        made = (await server.post(f"{API}/sessions", json=SESSION)).json()
    async with api.sessionmaker() as session, session.begin():
        for ticket in (await session.exec(select(LaunchTicket))).all():
            ticket.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    url = httpx.URL(made["url"])
    async with api.client() as browser:
        late = await browser.get(f"{url.path}?{url.query.decode()}", follow_redirects=False)
        assert late.status_code == 403, late.text[-600:]
        forged = await browser.get("/embed/acme/start", params={"ticket": "x" * 43}, follow_redirects=False)
        assert forged.status_code == 400


def test_api_keys_from_the_command_line_are_shown_once_listed_by_prefix_and_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    asyncio.run(create_schema(url))
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["partners", "add", "acme", "--name", "Acme", "--origin", "https://wallet.acme.example"]) == 0
    capsys.readouterr()
    assert main(["api-keys", "create", "acme", "--name", "reconciliation"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["api_key"].startswith(made["prefix"] + "_") and made["last_used_at"] is None
    assert main(["api-keys", "list", "acme"]) == 0
    listed = capsys.readouterr().out
    assert made["prefix"] in listed and made["api_key"] not in listed
    assert main(["api-keys", "revoke", "acme", made["prefix"]]) == 0
    assert json.loads(capsys.readouterr().out)["revoked_at"] is not None
    assert main(["api-keys", "revoke", "acme", "cok_nothing0"]) == 1
    assert main(["api-keys", "create", "nobody", "--name", "x"]) == 1


async def test_an_admin_makes_a_key_sees_it_once_and_revokes_it_all_audited(live_app: LiveApp, db: Db) -> None:
    async with db.sessionmaker() as session, session.begin():
        spec = PartnerSpec("acme", "Acme", ["https://acme.example"], "HS256")
        await save_partner(session, spec, PARTNER_SECRETS)
    admin = await signed_in_client(live_app, "admin@example.com")
    made = await admin.post("/admin/partners/acme/api-keys", data={"name": "reconciliation"}, headers=csrf(admin))
    assert made.status_code == 200
    key = re.search(r"<code>(cok_[a-z0-9]{8}_[^<]+)</code>", made.text).group(1)
    page = await admin.get("/admin/partners/acme/api-keys")
    assert "reconciliation" in page.text and key not in page.text and key[:12] in page.text  # shown once only
    server = live_app.client()
    assert (await server.get(f"{API}/orders", headers={"authorization": f"Bearer {key}"})).status_code == 200
    revoked = await admin.post(f"/admin/partners/acme/api-keys/{key[:12]}/revoke", headers=csrf(admin))
    assert revoked.status_code == 303
    assert (await server.get(f"{API}/orders", headers={"authorization": f"Bearer {key}"})).status_code == 401
    nameless = await admin.post("/admin/partners/acme/api-keys", data={"name": " "}, headers=csrf(admin))
    assert nameless.status_code == 422
    assert [row.action for row in await audit_rows(db)] == ["api_key_created", "api_key_revoked"]


CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth"
"""What Schemathesis holds every answer to: no 5xx, only documented statuses, media types and bodies, auth enforced."""


async def schemathesis(url: str, key: str, workdir: Path) -> tuple[int, str]:
    """Schemathesis's command line against the running app (its cache goes to `workdir`, not the checkout)."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}{API}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "40",
        "--seed",
        "1",
        "--header",
        f"Authorization: Bearer {key}",
    ]
    process = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=STDOUT, cwd=workdir)
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_schemathesis_finds_every_answer_as_the_openapi_document_says_with_valid_and_invalid_keys(
    live_app: LiveApp, db: Db, tmp_path: Path
) -> None:
    """Property-based requests made from the document itself, against the running API (the issue's CI check)."""
    async with db.sessionmaker() as session, session.begin():
        partner = await save_partner(
            session, PartnerSpec("acme", "Acme", ["https://acme.example"], "HS256"), PARTNER_SECRETS
        )
        key = (await make_key(session, partner, "fuzz")).plain
        user = User(issuer="partner:acme", subject="w1", email="w1@example.com")
        session.add(user)
        await session.flush()
        session.add_all([make_order(user_id=user.id, email=user.email, partner_id=partner.id) for _ in range(3)])
    for presented in (key, "cok_abcdefgh_" + "x" * 43):
        code, output = await schemathesis(live_app.url, presented, tmp_path)
        assert code == 0, output[-4000:]
        assert "Tested: 5" in output and re.search(r"[1-9]\d+ generated, [1-9]\d+ passed", output), output[-2000:]
