"""Operators' view: metrics that match what happened, JSON logs with request ids, readiness, the silence alarm."""

import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text

from tests.builders import PARTNER_SECRETS
from tests.conftest import RsaKeys, create_schema
from tests.integration.conftest import LiveApp, seed_order
from tests.integration.flow import Db, place_order, signed_in_client
from tests.integration.ipn_bodies import ipn_body
from tests.processes import ROOT, async_wait_for, running_receiver
from webapp import audit
from webapp.app import create_app
from webapp.config import DEV_SECRETS_KEY, Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.dev.stack import free_port
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.job_board import JobBoard, job_rows
from webapp.notifications.models import EmailMessage
from webapp.operations.alarms import Alarms

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
FAMILIES = (
    "cashout_ipn_receipts",
    "cashout_ipn_ack_seconds",
    "cashout_order_transitions",
    "cashout_order_creations",
    "cashout_reconciliation_polls",
    "cashout_job_rounds",
    "cashout_job_failures",
    "cashout_job_round_seconds",
    "cashout_sse_streams_open",
    "cashout_alixpay_call_seconds",
    "cashout_http_requests",
)


def samples(text_format: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text_format)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_happened_and_carry_no_ids(live_app: LiveApp, db: Db) -> None:
    reader = live_app.client()
    before = samples((await reader.get("/metrics")).text)
    live_app.sandbox.set_faults(duplicate=2)
    order_id = await place_order(await signed_in_client(live_app))
    await db.final(order_id, "SUCCESS")
    await async_wait_for(lambda: _all_judged(db, order_id, 8), what="every duplicate delivery to be judged")
    after = samples((await reader.get("/metrics")).text)

    families = {name for name, _ in after}
    for family in FAMILIES:
        assert any(name.startswith(family) for name in families), family
    verdicts = [receipt.verdict for receipt in await db.receipts(order_id)]
    for verdict in ("applied", "duplicate"):
        counted = value(after, "cashout_ipn_receipts_total", verdict=verdict)
        counted -= value(before, "cashout_ipn_receipts_total", verdict=verdict)
        assert counted == verdicts.count(verdict), verdict
    assert (
        value(after, "cashout_order_creations_total", outcome="created")
        - value(before, "cashout_order_creations_total", outcome="created")
        == 1
    )
    for status in ("AWAITING_PAYMENT", "SUCCESS"):
        assert (
            value(
                after,
                "cashout_order_transitions_total",
                status=status,
                source="create" if status == "AWAITING_PAYMENT" else "ipn",
            )
            >= 1
        )
    create_calls = "cashout_alixpay_call_seconds_count"
    assert (
        value(after, create_calls, endpoint="/api/v2/orders/create-cashout", outcome="ok")
        - value(before, create_calls, endpoint="/api/v2/orders/create-cashout", outcome="ok")
        == 1
    )
    for (_, labels), _count in after.items():
        for _label, text_value in labels:
            assert not UUID.search(text_value) and "@" not in text_value, labels


async def _all_judged(db: Db, order_id: str, count: int) -> bool:
    receipts = await db.receipts(order_id)
    return len(receipts) >= count and all(receipt.verdict for receipt in receipts)


async def test_five_duplicate_ipns_add_five_to_the_duplicate_counter(seeded: Settings, rsa_keys: RsaKeys) -> None:
    body = ipn_body(seeded, rsa_keys.alix.private, status="PAYMENT_COMPLETED")
    async with AsyncTestClient(app=create_app(seeded)) as client:
        before = samples((await client.get("/metrics")).text)
        for _ in range(6):
            await client.post("/ipn/alixpay", content=body)
        after = samples((await client.get("/metrics")).text)
    delta = value(after, "cashout_ipn_receipts_total", verdict="duplicate")
    delta -= value(before, "cashout_ipn_receipts_total", verdict="duplicate")
    assert delta == 5
    assert value(after, "cashout_ipn_ack_seconds_count") - value(before, "cashout_ipn_ack_seconds_count") == 6


async def test_metrics_ask_for_the_token_when_one_is_set(settings: Settings) -> None:
    await create_schema(settings.database.url)
    protected = settings.model_copy(update={"metrics_token": SecretStr("s3cret-metrics-token")})
    async with AsyncTestClient(app=create_app(protected)) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 401
        answer = await client.get("/metrics", headers={"authorization": "Bearer s3cret-metrics-token"})
    assert answer.status_code == 200 and "cashout_ipn_receipts_total" in answer.text


async def test_each_scrape_measures_readiness_and_the_outboxes_backlog(seeded: Settings) -> None:
    engine = make_engine(seeded.database.url)
    async with make_sessionmaker(engine)() as session, session.begin():
        order_id = (await session.exec(text("SELECT id FROM cashout_order"))).scalar_one()
        session.add_all(
            EmailMessage(
                order_id=order_id,
                kind=kind,
                status="SUCCESS",
                recipient="a@example.com",
                locale="en",
                state=state,
                created_at=datetime.now(UTC) - timedelta(minutes=minutes),
            )
            for kind, state, minutes in (("placed", "pending", 10), ("done", "pending", 2), ("failed", "sent", 60))
        )
    await engine.dispose()
    async with AsyncTestClient(app=create_app(seeded)) as client:
        scraped = samples((await client.get("/metrics")).text)
    checks = ("database", "schema", "keys", "secrets")
    assert [value(scraped, "cashout_ready", check=check) for check in checks] == [1, 1, 1, 1]
    assert value(scraped, "cashout_outbox_pending", outbox="emails") == 2  # the sent one is not waiting
    assert 600 <= value(scraped, "cashout_outbox_oldest_seconds", outbox="emails") < 700
    assert value(scraped, "cashout_outbox_pending", outbox="partner_webhooks") == 0
    assert value(scraped, "cashout_outbox_oldest_seconds", outbox="partner_webhooks") == 0


@pytest.fixture
async def seeded(settings: Settings) -> Settings:
    await create_schema(settings.database.url)
    await seed_order(settings)
    return settings


async def test_ready_only_with_database_current_schema_and_keys(settings: Settings, tmp_path: Path) -> None:
    await create_schema(settings.database.url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ready", "database": "ok", "schema": "current", "keys": "ok", "secrets": "ok"},
        )
        engine = make_engine(settings.database.url)
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '4dd5410faac6'"))
        behind = await client.get("/readyz")
        assert (behind.status_code, behind.json()["schema"]) == (503, "behind")
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE alembic_version"))
        await engine.dispose()
        missing = await client.get("/readyz")
        assert (missing.status_code, missing.json()["schema"]) == (503, "missing")
    copy = tmp_path / "alix_public_copy.pem"
    copy.write_bytes(settings.alixpay.public_key_files[0].read_bytes())
    alixpay = settings.alixpay.model_copy(update={"public_key_files": [copy]})
    await create_schema(settings.database.url)
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"alixpay": alixpay}))) as client:
        assert (await client.get("/readyz")).status_code == 200
        copy.unlink()  # the key file disappears after start-up
        gone = await client.get("/readyz")
    assert (gone.status_code, gone.json()["keys"]) == (503, "unreadable")


async def test_not_ready_while_secrets_key_opens_not_every_partner_secret(settings: Settings) -> None:
    """A wrong or too early removed SECRETS_KEY is refused before a partner meets it, by name, never the secret."""
    await create_schema(settings.database.url)
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session, session.begin():
        await save_partner(session, PartnerSpec("acme", "Acme", ["https://acme.example"], "HS256"), PARTNER_SECRETS)
    await engine.dispose()
    other_key = settings.model_copy(update={"secrets_key": SecretStr(Fernet.generate_key().decode())})
    async with AsyncTestClient(app=create_app(other_key)) as client:
        refused = await client.get("/readyz")
        scraped = samples((await client.get("/metrics")).text)
    assert (refused.status_code, refused.json()["secrets"]) == (503, "unreadable")
    assert value(scraped, "cashout_ready", check="secrets") == 0
    both = SecretStr(f"{Fernet.generate_key().decode()},{DEV_SECRETS_KEY}")  # a rotation in progress: ready
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"secrets_key": both}))) as client:
        assert (await client.get("/readyz")).status_code == 200


async def test_silence_alarm_fires_once_and_clears_when_an_ipn_arrives(
    seeded: Settings, rsa_keys: RsaKeys, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(seeded.database.url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        order = (await session.exec(text("SELECT id FROM cashout_order"))).scalar_one()
        await session.exec(
            text("UPDATE cashout_order SET created_at = :at WHERE id = :id"),
            params={"at": datetime.now(UTC) - timedelta(hours=2), "id": order},
        )
    with running_receiver() as receiver, caplog.at_level(logging.INFO, logger="webapp.operations.alarms"):
        alarms = Alarms(
            sessionmaker,
            silence_after=timedelta(minutes=30),
            job_failures=3,
            webhook_url=receiver.url,
        )
        assert await alarms.check() == 1
        assert await alarms.check() == 0  # one incident, not one alert per round
        assert [ipn.json["state"] for ipn in receiver.received] == ["firing"]
        assert receiver.received[0].json["alarm"] == "ipn_silence"
        errors = [r for r in caplog.records if r.levelname == "ERROR" and "ipn_silence" in r.getMessage()]
        assert len(errors) == 1

        async with AsyncTestClient(app=create_app(seeded)) as client:
            body = ipn_body(seeded, rsa_keys.alix.private, status="PAYMENT_COMPLETED")
            assert (await client.post("/ipn/alixpay", content=body)).status_code == 200
        assert await alarms.check() == 1
        assert await alarms.check() == 0
        assert [ipn.json["state"] for ipn in receiver.received] == ["firing", "resolved"]
    await engine.dispose()


async def test_the_audit_chains_head_is_written_out_so_removing_the_newest_rows_shows(
    seeded: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A chain cut at its head still verifies; the head written out earlier is what gives the cut away."""
    engine = make_engine(seeded.database.url)
    sessionmaker = make_sessionmaker(engine)
    for number in range(3):
        await audit.append(sessionmaker, actor="support@example.com", action="note_added", detail=str(number))
    with running_receiver() as receiver, caplog.at_level(logging.INFO, logger="webapp.operations.alarms"):
        alarms = Alarms(sessionmaker, silence_after=timedelta(minutes=30), job_failures=3, webhook_url=receiver.url)
        assert await alarms.anchor_audit_log() == 1
        (written,) = [ipn.json for ipn in receiver.received]
        async with sessionmaker() as session:
            newest = (await session.exec(text("SELECT hash FROM audit_entry WHERE id = 3"))).scalar_one()
        assert (written["alarm"], written["row"], written["hash"]) == ("audit_anchor", 3, newest)
        assert f"audit log head: row 3, hash {newest}" in caplog.text
        async with sessionmaker() as session, session.begin():  # someone with write access removes the newest row
            await session.exec(text("DELETE FROM audit_entry WHERE id = 3"))
        async with sessionmaker() as session:
            assert (await audit.verify_chain(session)).broken_at is None  # the chain alone cannot tell
        await alarms.anchor_audit_log()
        assert receiver.received[-1].json["row"] == 2  # below the head written out before: rows were removed
    await engine.dispose()


async def test_a_job_that_keeps_failing_on_one_instance_raises_one_alarm_whichever_instance_checks(
    seeded: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Two instances share the job board: the rounds of one fail, the alarm rounds of both look, and the
    incident opens once and closes once (with health kept per process it opened and closed on every round)."""
    engine = make_engine(seeded.database.url)
    sessionmaker = make_sessionmaker(engine)
    board_a, board_b = JobBoard(engine, "host-a:1"), JobBoard(engine, "host-b:2")
    alarms_a, alarms_b = (
        Alarms(sessionmaker, silence_after=timedelta(days=1), job_failures=3, webhook_url=None) for _ in range(2)
    )
    with caplog.at_level(logging.INFO, logger="webapp.operations.alarms"):
        for _ in range(2):
            await board_a.record("session-cleanup", "OperationalError")
        assert await alarms_a.check() + await alarms_b.check() == 0
        await board_a.record("session-cleanup", "OperationalError")
        assert [await alarms_b.check(), await alarms_a.check()] == [1, 0]  # opened once, by whichever looked first
        await board_a.record("session-cleanup", "OperationalError")
        assert [await alarms_a.check(), await alarms_b.check(), await alarms_a.check()] == [0, 0, 0]  # no flapping
        await board_b.record("session-cleanup", None)  # the next round, on the other instance, went well
        assert [await alarms_a.check(), await alarms_b.check()] == [1, 0]  # resolved once
    firing = [r for r in caplog.records if "job:session-cleanup firing" in r.getMessage()]
    assert len(firing) == 1 and "last on host-a:1" in firing[0].getMessage()
    async with sessionmaker() as session:
        (job,) = await job_rows(session)
    assert (job.failures_in_a_row, job.last_instance, job.last_error) == (0, "host-b:2", "OperationalError")
    await engine.dispose()


def production_env(tmp_path: Path, rsa_keys: RsaKeys, database_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "SESSION_SECRET": "a-production-session-secret-of-forty-chars!!",
        "PUBLIC_BASE_URL": "https://cashout.example.com",
        "ALIXPAY_BASE_URL": "https://127.0.0.1:9",
        "ALIXPAY_SECRET_KEY": "sk_live_for_the_log_test",
        "ALIXPAY_WEBHOOK_SECRET_KEY": "whsk_live_for_the_log_test",
        "ALIXPAY_PRIVATE_KEY_FILE": str(rsa_keys.partner.private),
        "ALIXPAY_PUBLIC_KEY_FILES": str(rsa_keys.alix.public),
        "OIDC_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
        "OIDC_CLIENT_SECRET": "an-oidc-client-secret",
        "SECRETS_KEY": Fernet.generate_key().decode(),
    }


@pytest.mark.parametrize("log_access", [True, False])
async def test_production_logs_are_json_lines_with_the_request_id_echoed(
    tmp_path: Path, rsa_keys: RsaKeys, log_access: bool
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    await create_schema(database_url)
    port = free_port()
    log_file = tmp_path / "app.log"
    env = production_env(tmp_path, rsa_keys, database_url, port) | {"LOG_ACCESS": str(log_access).lower()}
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--port", str(port)], cwd=ROOT, env=env, stderr=log, stdout=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await async_wait_for(lambda: _answers(f"{base}/healthz"), what="the production app to start")
            async with httpx.AsyncClient(base_url=base) as client:
                answers = [
                    await client.get("/healthz"),
                    await client.get("/no/such/page"),
                    await client.post("/ipn/alixpay", content=b"{junk"),
                    await client.get("/metrics"),
                ]
                # IPNs arriving together are judged in one batch; each line still names its own request.
                together = await asyncio.gather(
                    *(client.post("/ipn/alixpay", content=b"{junk %d" % number) for number in range(6))
                )
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert [answer.status_code for answer in answers] == [200, 404, 400, 404]  # no token: /metrics is off
    request_ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(request_ids)) == 4
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert {record.get("instance") for record in records} == {f"{socket.gethostname()}:{process.pid}"}  # one named
    access = [record for record in records if record.get("logger") == "uvicorn.access"]
    if log_access:
        for request_id, answer in zip(request_ids, answers, strict=True):
            mine = [record for record in records if record.get("request_id") == request_id]
            assert mine, f"no log line carries the id of {answer.request.url.path}"
        assert len(access) >= 4 and all(record.get("request_id") for record in access)  # each request's line has one
    else:  # behind a proxy that logs requests itself
        assert access == []
    ipn_lines = [record for record in records if "IPN receipt" in record.get("event", "")]
    ipn_request_ids = [request_ids[2], *(answer.headers["x-request-id"] for answer in together)]
    assert sorted(record["request_id"] for record in ipn_lines) == sorted(ipn_request_ids)
    secrets = (
        "sk_live_for_the_log_test",
        "a-production-session-secret",
        rsa_keys.partner.private.read_text().splitlines()[1],
    )
    assert not any(secret in line for secret in secrets for line in lines)


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_live_stream_is_counted_as_an_open_stream_not_as_a_request(live_app: LiveApp, db: Db) -> None:
    """A stream's "latency" would be how long its page stayed open: it has its own gauge instead."""
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    await db.final(order_id, "SUCCESS")
    async with client.stream("GET", f"/orders/{order_id}/events") as stream:
        assert "event: done" in [line async for line in stream.aiter_lines()]  # a final order: at once
    await client.get(f"/orders/{order_id}")
    metrics = samples((await client.get("/metrics")).text)
    paths = {dict(labels).get("path", "") for name, labels in metrics if name.startswith("cashout_http_requests")}
    assert any(path.startswith("/orders/{order_id") for path in paths), paths  # the order page is counted
    streams = [path for path in paths if "{order_id" in path and path.endswith("/events")]  # an order's live stream
    assert streams == [], paths  # (the partner API's /api/partner/v1/events is a request like any other)
    assert ("cashout_sse_streams_open", ()) in metrics
