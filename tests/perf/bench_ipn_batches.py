"""What one judged batch of IPNs costs by its size, in-process: the part of an IPN the HTTP benchmark cannot split.

The intake (`ipn/intake.py`) stores the IPNs that came together in one statement, judges them in one transaction
and publishes their orders' live updates once. Served at 16 connections its batches alternate large and small
(docs/PERFORMANCE.md), so what a batch costs whatever its size weighs on every IPN. Here the intake is driven
without HTTP, as the app builds it (`build_services`, the live updates' channels running): `n` first deliveries of
`n` orders handed to it at once, for n = 1 … 64, each size in rounds going up and down through the sizes. Printed
per batch: the app's CPU (all its threads), PostgreSQL's (all its processes), the wall time and the round trips on
the pool (statements, and each transaction's BEGIN and COMMIT); then a straight line through the app's and
PostgreSQL's CPU by size: a fixed cost per batch and a cost per IPN, the figures a change of the hot path's design
must move. Each seeded order has a past (its creation, an IPN judged) and the tables are analysed, as autovacuum
keeps them in production (the local server runs without it). Not a test: `make bench` (needs the local PostgreSQL).
"""

import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import create_schema, keyed_settings, make_rsa_keys  # noqa: E402
from tests.integration.conftest import libpq_url, new_postgres_database, seed_orders  # noqa: E402
from tests.integration.ipn_bodies import ipn_body  # noqa: E402
from tests.processes import postgres_cpu, postgres_cpu_since, served_loop  # noqa: E402
from webapp.app import create_app  # noqa: E402
from webapp.ipn.service import Delivery  # noqa: E402
from webapp.orders.state import Verdict  # noqa: E402
from webapp.services import Services, build_services  # noqa: E402

SIZES = (1, 2, 4, 8, 16, 32, 64)
BATCHES = 30
"""Batches of each size per round."""
ROUNDS = 4
"""Through the sizes up, down, up, down: a slow moment of a shared machine falls on every size."""
PAUSE = 0.002
"""Between batches, so the live update of one is sent before the next starts (as between two served batches)."""


@dataclass
class Figures:
    """One size's batches, added up."""

    batches: int = 0
    app_seconds: float = 0.0
    postgres_seconds: float = 0.0
    wall_seconds: float = 0.0
    round_trips: int = 0

    @property
    def app_ms(self) -> float:
        """Per batch, as the other figures."""
        return self.app_seconds * 1000 / self.batches

    @property
    def postgres_ms(self) -> float:
        return self.postgres_seconds * 1000 / self.batches

    @property
    def wall_ms(self) -> float:
        return self.wall_seconds * 1000 / self.batches

    @property
    def trips(self) -> float:
        return self.round_trips / self.batches


class RoundTrips:
    """Counts what the pool's connections send PostgreSQL and wait for: every statement, BEGIN and COMMIT."""

    def __init__(self) -> None:
        self.count = 0

    def attach(self, services: Services) -> None:
        """On every connection of the pool (the autocommit reader shares the engine's)."""

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(self._count)

        event.listen(services.db.engine.sync_engine, "connect", on_connect)

    def _count(self, _record: Any) -> None:
        self.count += 1


async def measure(services: Services, bodies: Iterator[bytes], trips: RoundTrips) -> dict[int, Figures]:
    intake = services.ipn_intake
    figures = {size: Figures() for size in SIZES}
    verdicts: list[Verdict | str] = []

    async def batch(size: int) -> None:
        # Handed over in one loop turn: the intake stores them as one batch, then judges them as one.
        answers = await asyncio.gather(*(intake.receive(Delivery(next(bodies))) for _ in range(size)))
        verdicts.extend(judged.verdict for _, judged in answers)

    for size in (4,) * 10:  # warm up: pool connections, compiled statements
        await batch(size)
    verdicts.clear()
    for round_ in range(ROUNDS):
        for size in SIZES if round_ % 2 == 0 else reversed(SIZES):
            taken = figures[size]
            app, postgres, wall, sent = time.process_time(), postgres_cpu(), time.perf_counter(), trips.count
            for _ in range(BATCHES):
                await batch(size)
                await asyncio.sleep(PAUSE)
            taken.app_seconds += time.process_time() - app
            taken.postgres_seconds += postgres_cpu_since(postgres)
            taken.wall_seconds += time.perf_counter() - wall - BATCHES * PAUSE
            taken.round_trips += trips.count - sent
            taken.batches += BATCHES
    others = [verdict for verdict in verdicts if verdict != Verdict.APPLIED]
    if others:
        raise SystemExit(f"{len(others)} IPNs not applied: {sorted(set(others))}")
    return figures


def fitted(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares: (cost per batch, cost per IPN) through (size, cost of a batch)."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return mean_y - slope * mean_x, slope


def report(figures: dict[int, Figures]) -> None:
    print("size  app ms/batch  PG ms/batch  wall ms/batch  round trips/batch  app ms/IPN  PG ms/IPN  wall ms/IPN")  # noqa: T201
    for size, taken in figures.items():
        print(  # noqa: T201
            f"{size:>4} {taken.app_ms:>13.2f} {taken.postgres_ms:>12.2f} {taken.wall_ms:>14.2f} {taken.trips:>18.1f}"
            f" {taken.app_ms / size:>11.3f} {taken.postgres_ms / size:>10.3f} {taken.wall_ms / size:>12.3f}"
        )
    for what, points in (
        ("app", [(size, taken.app_ms) for size, taken in figures.items()]),
        ("PostgreSQL", [(size, taken.postgres_ms) for size, taken in figures.items()]),
    ):
        fixed, each = fitted(points)
        print(f"{what} CPU: {fixed:.2f} ms per batch + {each:.3f} ms per IPN")  # noqa: T201


async def run(settings: Any, bodies: Iterator[bytes]) -> dict[int, Figures]:
    services = build_services(settings)
    trips = RoundTrips()
    trips.attach(services)
    app = create_app(settings, services)
    async with services.channels, services.running(app):
        return await measure(services, bodies, trips)


HISTORY = (
    "INSERT INTO order_transition (order_id, from_status, to_status, source, at, note)"
    " SELECT id, 'CREATING', 'AWAITING_PAYMENT', 'create', now(), '' FROM cashout_order",
    "INSERT INTO ipn_receipt (received_at, headers, body, body_size, dedupe_key, external_order_id, provider_status,"
    " verdict, processed_at, attempts) SELECT now(), '{}', '{}', 2, md5(external_order_id) || md5(id::text),"
    " external_order_id, 'AWAITING_PAYMENT', 'applied', now(), 0 FROM cashout_order",
    "ANALYZE",
)
"""Each order's past as a production database holds it (its creation, an IPN judged), then statistics: analysed
empty, the receipts and transitions would be planned as empty tables and read whole by every batch."""


async def with_history(database_url: str) -> None:
    connection = await asyncpg.connect(libpq_url(database_url))
    try:
        for statement in HISTORY:
            await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    rsa_keys = make_rsa_keys(Path(tempfile.mkdtemp(prefix="bench-batches-")))
    database_url, drop = new_postgres_database()
    try:
        settings = keyed_settings(database_url, rsa_keys).model_copy(update={"run_jobs": False})
        asyncio.run(create_schema(database_url))
        count = 10 * 4 + ROUNDS * BATCHES * sum(SIZES)
        order_ids = asyncio.run(seed_orders(database_url, "bench@example.com", count))
        asyncio.run(with_history(database_url))
        bodies = iter(
            [
                ipn_body(settings, rsa_keys.alix.private, order_id=order, status="PAYMENT_COMPLETED")
                for order in order_ids
            ]
        )
        print(f"Judged IPN batches in-process, PostgreSQL; {ROUNDS} rounds of {BATCHES} batches per size")  # noqa: T201
        with asyncio.Runner(loop_factory=served_loop()) as runner:
            report(runner.run(run(settings, bodies)))
    finally:
        drop()


if __name__ == "__main__":
    main()
