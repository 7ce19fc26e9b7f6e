"""The activity charts on 100 000 PostgreSQL orders: p50/p95 of one redraw's figures, beside a primary-key lookup.

Not a test: `make bench` (needs the local PostgreSQL). Target (issue 29): p95 < 50 ms for the figures of all six
charts; the plan of each query is printed (which index it reads). The counts are as the status subscriber and the
roll-up job leave them (one row per hour and kind) plus 200 rows appended since the last roll-up.
"""

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from tests.conftest import create_schema  # noqa: E402
from tests.integration.conftest import new_postgres_database  # noqa: E402
from tests.integration.test_support_search_plan import GENERATE  # noqa: E402
from tests.perf.bench_support_search import print_latencies  # noqa: E402
from webapp.activity import figures  # noqa: E402
from webapp.db import make_engine, make_sessionmaker  # noqa: E402
from webapp.orders.models import Order  # noqa: E402
from webapp.rendering import DISPLAY_TIMEZONE  # noqa: E402

ROUNDS = 60
COUNTS_AND_WEBHOOKS = """
INSERT INTO activity_count (hour, kind, count, rolled)
SELECT date_trunc('hour', created_at),
    'placed:' || CASE status WHEN 'SUCCESS' THEN 'succeeded' WHEN 'FAIL' THEN 'failed' ELSE 'pending' END,
    count(*), true
FROM cashout_order GROUP BY 1, 2;
INSERT INTO activity_count (hour, kind, count, rolled)
SELECT date_trunc('hour', created_at), 'payout:' || (id % 12), count(*), true
FROM cashout_order WHERE status IN ('SUCCESS', 'PAYMENT_COMPLETED') GROUP BY 1, 2;
INSERT INTO activity_count (hour, kind, count, rolled)
SELECT date_trunc('hour', created_at), 'ipn:' || (id % 13), count(*) * 3, true FROM cashout_order GROUP BY 1, 2;
INSERT INTO activity_count (hour, kind, count, rolled)
SELECT date_trunc('hour', now()), 'placed:pending', 1, false FROM generate_series(1, 200);
INSERT INTO partner (slug, name, allowed_origins, return_urls, primary_color, theme_mode, token_alg, token_key,
    webhook_secret, enabled, created_at, updated_at)
VALUES ('bench', 'Bench', '[]', '[]', '#0b57d0', 'light', 'HS256', 'k', 's', true, now(), now());
INSERT INTO webhook_event (event_id, partner_id, order_id, type, payload, state, attempts, created_at)
SELECT 'evt_' || id, 1, id, 'order.succeeded', '{}', 'delivered', 1, created_at
FROM cashout_order WHERE id % 5 = 0;
INSERT INTO webhook_attempt (event_id, at, status_code, error, duration_ms)
SELECT id, created_at, CASE WHEN id % 7 = 0 THEN 500 ELSE 200 END, '', 40 FROM webhook_event;
ANALYZE activity_count; ANALYZE webhook_event; ANALYZE webhook_attempt;
"""


async def seed(database_url: str) -> None:
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        for statement in (GENERATE + COUNTS_AND_WEBHOOKS).split(";"):
            if statement.strip():
                await connection.execute(text(statement))
    await engine.dispose()


async def timings(database_url: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    results: dict[str, list[float]] = {"(baseline: primary key)": [], "all six charts": []}
    async with sessionmaker() as session:
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await session.get(Order, 4242)
            results["(baseline: primary key)"].append((time.perf_counter() - started) * 1000)
            session.expunge_all()
            started = time.perf_counter()
            await figures.activity(session, zone=DISPLAY_TIMEZONE)
            results["all six charts"].append((time.perf_counter() - started) * 1000)
        explained = {}
        async with engine.connect() as connection:
            for name, statement in figures.statements(DISPLAY_TIMEZONE).items():
                results[name] = []
                for _ in range(ROUNDS // 3):
                    started = time.perf_counter()
                    (await connection.execute(statement)).all()
                    results[name].append((time.perf_counter() - started) * 1000)
                sql = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
                rows = (await connection.execute(text(f"EXPLAIN {sql}"))).scalars().all()
                explained[name] = " | ".join(row.strip() for row in rows if "Scan" in row)
    await engine.dispose()
    return {name: sorted(samples) for name, samples in results.items()}, explained


def main() -> None:
    database_url, drop = new_postgres_database()
    try:
        asyncio.run(create_schema(database_url))
        asyncio.run(seed(database_url))
        results, explained = asyncio.run(timings(database_url))
    finally:
        drop()
    print_latencies("Activity charts", "what", results)
    for name, plan in explained.items():
        print(f"plan {name}: {plan}")  # noqa: T201


if __name__ == "__main__":
    main()
