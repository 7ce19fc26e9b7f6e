"""Background work once per cluster: instances sharing PostgreSQL run each job's round once per interval."""

import asyncio

import pytest

from tests.conftest import create_schema
from webapp.app import create_app
from webapp.config import Settings
from webapp.db import make_engine
from webapp.job_board import ClusterLeases
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
        tasks = [task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("job:")]
    assert bool(tasks) is run_jobs
