"""Support search on 100 000 PostgreSQL orders: p50/p95 per search key, beside a primary-key lookup (baseline).

Not a test: `make bench` (needs the local PostgreSQL). Target (issue 16): p95 < 50 ms per key.
"""

import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from tests.conftest import create_schema  # noqa: E402
from tests.integration.conftest import new_postgres_database  # noqa: E402
from tests.integration.test_support_search_plan import GENERATE  # noqa: E402
from webapp.db import make_engine, make_sessionmaker  # noqa: E402
from webapp.orders.models import Order  # noqa: E402
from webapp.support.search import Console, SearchQuery, search  # noqa: E402

ROUNDS = 60
KEYS = {
    "email": "customer42@example.com",
    "email start": "customer42@",
    "order id": "c4ca4238-a0b9-2382-0dcc-509a6f75849b",
    "order id start": "c4ca4238",
    "internal number": "4242",
    "account end": "004242",
    "transfer content": "RUT TIEN 7Q2K9MXA",
    "tx hash": "0x0123456789abcdef0123456789abcdef",
    "bank content": "ALIX 4242",
}


async def timings(database_url: str) -> dict[str, list[float]]:
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        for statement in GENERATE.split(";"):
            if statement.strip():
                await connection.execute(text(statement))
    sessionmaker = make_sessionmaker(engine)
    results: dict[str, list[float]] = {}
    async with sessionmaker() as session:
        for name, typed in {"(baseline: primary key)": None, **KEYS}.items():
            samples = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                if typed is None:
                    await session.get(Order, 4242)
                else:
                    await search(session, SearchQuery(text=typed), console=Console())
                samples.append((time.perf_counter() - started) * 1000)
                session.expunge_all()
            results[name] = sorted(samples)
    await engine.dispose()
    return results


def main() -> None:
    database_url, drop = new_postgres_database()
    try:
        asyncio.run(create_schema(database_url))
        results = asyncio.run(timings(database_url))
    finally:
        drop()
    print_latencies("Support search", "key", results)


def print_latencies(title: str, heading: str, results: dict[str, list[float]]) -> None:
    """p50 and p95 (ms) of each sorted sample list, and its p50 against the primary-key baseline's."""
    print(f"{title}, 100 000 orders, {os.cpu_count()} cores, Python {platform.python_version()}")  # noqa: T201
    baseline = statistics.median(results["(baseline: primary key)"])
    print(f"{heading:24} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}")  # noqa: T201
    for name, samples in results.items():
        p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95) - 1]
        print(f"{name:24} {p50:>8.2f} {p95:>8.2f} {p50 / baseline:>15.1f}")  # noqa: T201


if __name__ == "__main__":
    main()
