"""Several app instances on one PostgreSQL database: live updates cross instances, work is done once, nothing lost.

Real processes (`python -m webapp serve`), the real IdP, a fresh PostgreSQL database per test.
"""

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col, select, update

from tests.builders import make_order
from tests.conftest import RsaKeys, create_schema
from tests.integration.cluster import next_status, signed_in
from tests.integration.conftest import Cluster, make_client, seed_orders
from tests.integration.ipn_bodies import ipn_body
from tests.processes import SandboxServer, async_wait_for
from webapp.auth.models import User
from webapp.config import Settings
from webapp.db import Database, make_engine, make_sessionmaker
from webapp.ipn.models import IpnReceipt
from webapp.orders.live import make_channels
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.reconcile import reconcile_once
from webapp.services import live_publisher, status_changes
from webapp.sessions import HttpSession


def redis_is_reachable() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


@pytest.mark.parametrize("backend", ["postgresql", "redis"])
async def test_an_ipn_received_by_one_instance_updates_a_page_open_on_the_other(
    cluster: Cluster, rsa_keys: RsaKeys, backend: str
) -> None:
    if backend == "redis":
        if not redis_is_reachable():
            pytest.skip("no Redis on 127.0.0.1:6379 (the PostgreSQL backend is the default and is tested)")
        cluster.env["CHANNELS_REDIS_URL"] = "redis://127.0.0.1:6379/15"
    with cluster.instance("a") as (url_a, _), cluster.instance("b") as (url_b, _):
        person = await signed_in(url_a, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        on_b = httpx.AsyncClient(base_url=url_b, cookies=person.cookies, timeout=20)
        async with on_b, on_b.stream("GET", f"/orders/{order_id}/events") as events:
            assert events.status_code == 200
            lines = events.aiter_lines()
            await next_status(lines, "sending VND to your bank")
            body = ipn_body(cluster.settings, rsa_keys.alix.private, order_id=order_id)
            answer = httpx.post(f"{url_a}/ipn/alixpay", content=body)
            assert answer.json() == {"verdict": "applied"}
            await next_status(lines, "Money sent — finishing up")  # heard on B through the shared backend
            # B drew the change from the status card A published with it: no database read on B for it.
            assert await drawings(on_b) == {"database": 1.0, "notification": 1.0}
        await person.aclose()


async def drawings(instance: httpx.AsyncClient) -> dict[str, float]:
    """The instance's live drawings so far, by where their data came from (the first of a stream reads it)."""
    scrape = (await instance.get("/metrics")).text
    return {
        sample.labels["source"]: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "cashout_live_drawings_total"
    }


@pytest.mark.parametrize("ending", ["sign-out", "support", "expiry"])
async def test_a_session_ended_on_one_instance_ends_its_streams_on_both_within_a_second(
    cluster: Cluster, rsa_keys: RsaKeys, ending: str
) -> None:
    """Signing out, support's "sign this person out" and expiry (the clean-up job) end the streams everywhere."""
    cluster.env["CLEANUP_INTERVAL_SECONDS"] = "0.3"
    with cluster.instance("a") as (url_a, _), cluster.instance("b") as (url_b, _):
        person = await signed_in(url_a, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        # Another session: the same person's for a sign-out or an expiry, someone else's when support signs out.
        other = await signed_in(
            url_b, cluster.settings, "user@example.com" if ending != "support" else "admin@example.com"
        )
        agent = await signed_in(url_a, cluster.settings, "support@example.com")
        others_order = (
            order_id if ending != "support" else (await seed_orders(cluster.database_url, "admin@example.com", 1))[0]
        )
        async with contextlib.AsyncExitStack() as stack:
            streams = {}
            for name, client, base, watched in [
                ("a", person, url_a, order_id),
                ("b", person, url_b, order_id),
                ("other", other, url_b, others_order),
            ]:
                viewer = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=base, cookies=client.cookies, timeout=20)
                )
                response = await stack.enter_async_context(viewer.stream("GET", f"/orders/{watched}/events"))
                streams[name] = response.aiter_lines()
                await next_status(streams[name], "sending VND to your bank")
            await asyncio.sleep(0.5)  # every instance has subscribed to the announcements
            if ending == "sign-out":
                out = await person.post("/logout", headers={"x-csrftoken": person.cookies["csrftoken"]})
                assert out.status_code == 303
            elif ending == "support":
                user_id = await user_id_of(cluster.database_url, "user@example.com")
                out = await agent.post(
                    f"/support/customers/{user_id}/sign-out", headers={"x-csrftoken": agent.cookies["csrftoken"]}
                )
                assert out.status_code == 303 and "signed_out=1" in out.headers["location"]
            else:
                await expire_session(cluster.database_url, person.cookies["session"])

            async def ended(lines: AsyncIterator[str]) -> bool:
                async for line in lines:
                    if line == "event: done":
                        return True
                return False

            assert await asyncio.wait_for(asyncio.gather(ended(streams["a"]), ended(streams["b"])), 1) == [True, True]
            assert (await person.get("/orders", follow_redirects=False)).status_code in (302, 303)  # sign in again
            body = ipn_body(cluster.settings, rsa_keys.alix.private, order_id=others_order)
            assert httpx.post(f"{url_a}/ipn/alixpay", content=body).json() == {"verdict": "applied"}
            await next_status(streams["other"], "Money sent — finishing up")  # the other session watches on
        for client in (person, other, agent):
            await client.aclose()


async def user_id_of(database_url: str, email: str) -> int:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        found = (await session.exec(select(User.id).where(User.email == email))).one()
    await engine.dispose()
    return int(found or 0)


async def expire_session(database_url: str, key: str) -> None:
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await connection.execute(update(HttpSession).where(col(HttpSession.key) == key).values(expires_at=past))
    await engine.dispose()


async def test_sigterm_stops_an_instance_with_an_open_stream_within_its_graceful_timeout(cluster: Cluster) -> None:
    """A rolling restart: the stopping instance tells its streams to go (at the latest, cuts them after
    `--graceful-timeout`, 5 s), so the pages reconnect to another instance, instead of holding the restart up."""
    with cluster.instance("a") as (url, process):
        person = await signed_in(url, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        viewer = httpx.AsyncClient(base_url=url, cookies=person.cookies, timeout=30)
        async with viewer:
            with contextlib.suppress(httpx.HTTPError):
                async with viewer.stream("GET", f"/orders/{order_id}/events") as events:
                    await next_status(events.aiter_lines(), "sending VND to your bank")
                    asked = time.monotonic()
                    process.send_signal(signal.SIGTERM)
                    await asyncio.to_thread(process.wait, 30)
                    stopped_after = time.monotonic() - asked
        await person.aclose()
    assert stopped_after < 9, stopped_after  # 5 s of grace, then the lifespan closes the pool and the clients


async def test_with_two_workers_every_stream_hears_every_update(cluster: Cluster, rsa_keys) -> None:
    with cluster.instance("workers", workers=2) as (url, _):
        person = await signed_in(url, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        async with contextlib.AsyncExitStack() as stack:
            streams = []
            for _ in range(8):  # spread over both workers by the kernel
                client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, cookies=person.cookies))
                response = await stack.enter_async_context(client.stream("GET", f"/orders/{order_id}/events"))
                lines = response.aiter_lines()
                await next_status(lines, "sending VND to your bank")
                streams.append(lines)
            body = ipn_body(cluster.settings, rsa_keys.alix.private, order_id=order_id)
            assert httpx.post(f"{url}/ipn/alixpay", content=body).json() == {"verdict": "applied"}
            await asyncio.gather(*(next_status(lines, "Money sent — finishing up") for lines in streams))
        await person.aclose()


async def test_killing_an_instance_mid_burst_loses_no_receipt_and_applies_each_once(cluster: Cluster, rsa_keys) -> None:
    order_ids = await seed_orders(cluster.database_url, "burst@example.com", 30)
    bodies = [ipn_body(cluster.settings, rsa_keys.alix.private, order_id=order_id) for order_id in order_ids]
    engine = make_engine(cluster.database_url)
    sessionmaker = make_sessionmaker(engine)

    async def stored() -> int:
        async with sessionmaker() as session:
            return len((await session.exec(select(IpnReceipt.id))).all())

    with cluster.instance("survivor"), cluster.instance("victim") as (victim_url, victim):
        async with httpx.AsyncClient(base_url=victim_url, timeout=10) as client:

            async def deliver(body: bytes) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post("/ipn/alixpay", content=body)

            burst = asyncio.gather(*(deliver(body) for body in bodies))
            await async_wait_for(lambda: _at_least(stored, 3), what="the victim to store a few receipts")
            os.kill(victim.pid, signal.SIGKILL)  # mid-burst: the rest are in flight
            await burst

        async def all_judged() -> list[IpnReceipt] | None:
            async with sessionmaker() as session:
                receipts = list((await session.exec(select(IpnReceipt))).all())
            return receipts if all(receipt.verdict for receipt in receipts) else None

        receipts = await async_wait_for(all_judged, what="the survivor to finish every stored receipt", timeout=30)
        async with sessionmaker() as session:
            transitions = (await session.exec(select(OrderTransition))).all()
            orders = {o.id: o.external_order_id for o in (await session.exec(select(Order))).all()}
        await engine.dispose()
    applied_per_order = {orders[t.order_id] for t in transitions}
    assert len(transitions) == len(applied_per_order)  # no status applied twice
    stored_for = {receipt.external_order_id for receipt in receipts}
    assert stored_for == applied_per_order  # every stored receipt was applied, by the victim or the survivor
    assert receipts, "the victim stored nothing before it died: the test proved nothing"


async def _at_least(count: Callable[[], Awaitable[int]], minimum: int) -> bool:
    return await count() >= minimum


async def test_reconciliation_on_two_instances_at_once_polls_each_order_once(
    database_url: str, sandbox: SandboxServer, rsa_keys: RsaKeys
) -> None:
    await create_schema(database_url)
    cluster = Cluster(database_url, Settings(), {}, Path())
    order_ids = await seed_orders(cluster.database_url, "quiet@example.com", 10)
    client = make_client(sandbox, rsa_keys)
    for order_id in order_ids:  # the orders exist at Alix Pay; our side has heard nothing for a while
        await client.create_cashout(make_order(user_id=None, email="quiet@example.com", external_order_id=order_id))
    engines = [make_engine(database_url) for _ in range(2)]
    async with make_sessionmaker(engines[0])() as session, session.begin():
        for order in (await session.exec(select(Order))).all():
            order.updated_at = datetime.now(UTC) - timedelta(hours=1)
    quiet = timedelta(minutes=5)
    instances = [Database.on(engine) for engine in engines]  # two app instances, each with its own pool
    await asyncio.gather(
        *(
            reconcile_once(
                db=db, changes=status_changes(db, live_publisher(db, make_channels())), alixpay=client, silence=quiet
            )
            for db in instances
        )
    )
    async with make_sessionmaker(engines[0])() as session:
        polls = (await session.exec(select(OrderEvent.order_id).where(col(OrderEvent.kind) == "poll"))).all()
    await client.aclose()
    for engine in engines:
        await engine.dispose()
    assert sorted(polls) == sorted(set(polls)) and len(polls) == 10  # each order polled exactly once


pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def test_with_two_workers_each_logs_json_and_the_metrics_sum_every_worker(cluster: Cluster) -> None:
    """`serve --workers 2`: every worker writes JSON lines naming itself, and every scrape, whichever worker
    answers it, counts the requests of both (each worker used to report its own count)."""
    cluster.env["LOG_JSON"] = "true"
    with cluster.instance("workers", workers=2) as (url, process):
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            for _ in range(12):
                async with httpx.AsyncClient(base_url=url, timeout=20) as fresh:  # new connections: both workers
                    assert (await fresh.get("/readyz")).status_code == 200
            scrapes = [(await client.get("/metrics")).text for _ in range(6)]
        log = (cluster.log_dir / "workers.log").read_text()
    counted = {
        sum(
            sample.value
            for family in text_string_to_metric_families(scrape)
            for sample in family.samples
            if sample.name == "cashout_http_requests_total" and sample.labels.get("path") == "/readyz"
        )
        for scrape in scrapes
    }
    assert counted == {12.0}
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    workers = {record["instance"] for record in records if record.get("event") == "Application startup complete."}
    assert len(workers) == 2 and all(instance.rsplit(":", 1)[1] != str(process.pid) for instance in workers)
    assert not [line for line in log.splitlines() if line.strip() and not line.startswith("{")]  # no plain text
