"""The job board: each job's round once per cluster (instances sharing PostgreSQL), and every instance's heartbeat."""

import asyncio
import logging
import os
import re
import socket
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from tests.conftest import create_schema
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, signed_in_client
from webapp.app import create_app
from webapp.config import Settings
from webapp.db import make_engine, utcnow
from webapp.job_board import GONE_AFTER_BEATS, HEARTBEAT_SECONDS, AppInstance, ClusterLeases, JobBoard, instances
from webapp.jobs import Job, JobHealth, running
from webapp.services import build_services

INTERVAL = 0.2


ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
async def postgres(database_url: str) -> str:
    """A fresh PostgreSQL database with the schema (SQLite serves one instance: no claims there)."""
    await create_schema(database_url)
    return database_url


def counting(rounds: dict[str, int], instance: str) -> Job:
    async def run() -> int:
        rounds[instance] = rounds.get(instance, 0) + 1
        return 0

    return Job("tick", INTERVAL, run)


@ON_POSTGRESQL
async def test_two_instances_run_each_round_once_per_interval_not_twice(postgres: str) -> None:
    engines = [make_engine(postgres) for _ in range(2)]
    rounds: dict[str, int] = {}
    try:
        a, b = (ClusterLeases(engine, name) for engine, name in zip(engines, ("a", "b"), strict=True))
        async with (
            running([counting(rounds, "a")], JobHealth(), leases=a),
            running([counting(rounds, "b")], JobHealth(), leases=b),
        ):
            await asyncio.sleep(2.1)
        shared = sum(rounds.values())
        alone: dict[str, int] = {}  # the same two instances without leases: each polls on its own
        async with running([counting(alone, "a")], JobHealth()), running([counting(alone, "b")], JobHealth()):
            await asyncio.sleep(2.1)
    finally:
        for engine in engines:
            await engine.dispose()
    assert 6 <= shared <= 11, rounds  # about one round per 0.2 s across both (2.1 s)
    assert sum(alone.values()) >= 2 * shared - 4, (alone, rounds)  # about twice as many without


@ON_POSTGRESQL
async def test_the_lease_gauge_says_which_instance_holds_a_round_while_it_runs(postgres: str) -> None:
    engine = make_engine(postgres)
    held: list[float | None] = []

    async def run() -> int:
        held.append(REGISTRY.get_sample_value("cashout_job_lease_held", {"job": "gauged"}))
        return 0

    try:
        async with running([Job("gauged", INTERVAL, run)], JobHealth(), leases=ClusterLeases(engine, "a")):
            await asyncio.sleep(0.3)
    finally:
        await engine.dispose()
    assert held and set(held) == {1.0}  # held while the round ran
    assert REGISTRY.get_sample_value("cashout_job_lease_held", {"job": "gauged"}) == 0.0  # and released after


@ON_POSTGRESQL
async def test_when_the_holder_stops_another_instance_takes_over_within_one_interval(postgres: str) -> None:
    engines = [make_engine(postgres) for _ in range(2)]
    rounds: dict[str, int] = {}
    try:
        a, b = (ClusterLeases(engine, name) for engine, name in zip(engines, ("a", "b"), strict=True))
        async with running([counting(rounds, "a")], JobHealth(), leases=a):
            await asyncio.sleep(0.5)
        assert rounds.get("a", 0) >= 2
        async with running([counting(rounds, "b")], JobHealth(), leases=b):
            await asyncio.sleep(INTERVAL * 1.5)
            assert rounds.get("b", 0) >= 1  # the next due round, taken by the instance still running
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize("run_jobs", [True, False])
async def test_an_instance_started_without_jobs_runs_none(settings: Settings, run_jobs: bool) -> None:
    await create_schema(settings.database.url)
    services = build_services(settings.model_copy(update={"run_jobs": run_jobs}))
    app = create_app(services=services)
    async with services.running(app):
        await asyncio.sleep(0)
        tasks = {task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("job:")}
    if run_jobs:
        assert {"job:heartbeat", "job:rate-limit-flush", "job:reconcile"} <= tasks
    else:  # it still says it is alive, and adds the requests it served to the rate limits' shared counts
        assert tasks == {"job:heartbeat", "job:rate-limit-flush"}


async def test_every_instance_is_listed_alive_until_its_heartbeats_stop(live_app: LiveApp, db: Db) -> None:
    other = JobBoard(db.engine, "host-b:42")
    await other.heartbeat()
    admin = await signed_in_client(live_app, "admin@example.com")
    page = await admin.get("/operations")
    own = f"{socket.gethostname()}:{os.getpid()}"  # the live app runs in this process
    assert f"<code>{own}</code>" in page.text and "<code>host-b:42</code>" in page.text
    async with db.sessionmaker() as session, session.begin():
        gone = await session.get(AppInstance, "host-b:42")
        gone.last_seen_at = utcnow() - timedelta(seconds=HEARTBEAT_SECONDS * GONE_AFTER_BEATS + 1)
    async with db.sessionmaker() as session:
        states = {instance.id: instance.alive for instance in await instances(session)}
    assert states == {own: True, "host-b:42": False}
    later = await admin.get("/operations/overview")
    row = re.search(r"<tr class=\"attention\">\s*<td><code>host-b:42</code>.*?</tr>", later.text, re.S)
    assert row is not None and "gone" in row.group(0)


async def test_a_quiet_job_that_runs_every_second_logs_its_rounds_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handles_two() -> int:
        return 2

    with caplog.at_level(logging.INFO, logger="webapp.jobs"):
        async with running(
            [Job("loud", INTERVAL, handles_two), Job("hushed", INTERVAL, handles_two, quiet=True)], JobHealth()
        ):
            await asyncio.sleep(0.1)
    assert "job loud: 2 handled" in caplog.text and "hushed" not in caplog.text


async def test_a_quiet_job_shares_its_first_round_its_failures_and_its_recovery_not_every_success() -> None:
    outcomes = iter([None, None, None, "boom", "boom", None, None])
    shared: list[str | None] = []

    class Recorded:
        async def record(self, name: str, failed: str | None) -> None:
            shared.append(failed)

    async def round_() -> int:
        if next(outcomes, None) == "boom":
            raise RuntimeError("boom")
        return 1

    async with running([Job("flush", 0.01, round_, quiet=True)], JobHealth(), board=Recorded()):
        await asyncio.sleep(0.3)
    assert shared[:4] == [None, "RuntimeError", "RuntimeError", None]  # three failures in a row stay countable
    assert shared.count(None) == 2
