"""IPN ingest: our `/ipn/alixpay` against a bare receiver (verify + insert, `bare_ipn.py`), same run, PostgreSQL.

Signed IPNs at concurrency 1, 16 and 64 in two shapes: spread over many orders, and bursts where each status of
an order arrives five times, partly out of order. Prints IPN/s, p50/p99 acknowledgement, each server process's CPU
per IPN answered and PostgreSQL's (all its processes: they share the two cores), and ours against the baseline
(rate ratio, CPU multiple), then checks that no receipt was lost, no status applied twice and none left
unprocessed. Not a test: `make bench` (needs the local PostgreSQL). Target
(issue 30): ≥ 0.33 of the baseline in both shapes, p99 < 40 ms at 16.
"""

import asyncio
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import create_schema, keyed_settings, make_rsa_keys  # noqa: E402
from tests.integration.conftest import POSTGRES_ADMIN_DSN, app_env, new_postgres_database, seed_orders  # noqa: E402
from tests.integration.ipn_bodies import ipn_body  # noqa: E402
from tests.processes import cpu_seconds, postgres_cpu_seconds, running_process  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.dev.stack import free_port  # noqa: E402

LEVELS = (1, 16, 64)
SPREAD = 2000  # IPNs per level, one order each (wrk posts them in turn, from the start again if it gets through)
BURST_ORDERS = 100  # orders per level, 4 statuses x 5 deliveries each
DURATION = 4  # seconds per run
WRK_SCRIPT = Path(__file__).with_name("ipn.lua")
STATUSES = ("AWAITING_PAYMENT", "PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS")


def workloads(settings: Settings, key: Path, order_ids: list[str]) -> dict[tuple[str, int], list[bytes]]:
    ids = iter(order_ids)
    loads: dict[tuple[str, int], list[bytes]] = {}
    for level in LEVELS:
        loads["spread", level] = [
            ipn_body(settings, key, order_id=next(ids), status="PAYMENT_COMPLETED") for _ in range(SPREAD)
        ]
        burst = []
        for _ in range(BURST_ORDERS):
            order_id = next(ids)
            bodies = [ipn_body(settings, key, order_id=order_id, status=status) for status in STATUSES]
            deliveries = [body for body in bodies for _ in range(5)]
            random.shuffle(deliveries)  # duplicates and reordering, as at-least-once delivery allows
            burst += deliveries
        loads["burst", level] = burst
    return loads


@dataclass(frozen=True)
class Run:
    rate: float
    p50: float
    p99: float
    cpu_ms: float
    """The server's CPU per IPN answered."""
    postgres_ms: float
    """All PostgreSQL processes' CPU per IPN answered (they share the machine's two cores with the server)."""
    answered: int


def drive(url: str, pid: int, bodies: list[bytes], concurrency: int, directory: Path) -> Run:
    """`bodies` posted in turn by wrk over `concurrency` connections for DURATION seconds (one wrk thread)."""
    bodies_file = directory / "bodies.txt"
    bodies_file.write_bytes(b"".join(body.replace(b"\n", b"") + b"\n" for body in bodies))
    cpu_before, postgres_before = cpu_seconds(pid), postgres_cpu_seconds()
    output = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{DURATION}s", "--latency", "-s", str(WRK_SCRIPT), url],
        env={**os.environ, "BODIES": str(bodies_file)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000
    postgres_ms = (postgres_cpu_seconds() - postgres_before) * 1000
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    answered = max(int(re.search(r"(\d+) requests in", output).group(1)), 1)
    return Run(
        rate, _latency(output, "50%"), _latency(output, "99%"), cpu_ms / answered, postgres_ms / answered, answered
    )


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def checks(dsn: str, answered: int) -> tuple[int, int, int]:
    """(receipts lost, statuses applied twice, receipts left unprocessed) in our database."""
    connection = await asyncpg.connect(dsn)
    try:
        stored = await connection.fetchval("SELECT count(*) FROM ipn_receipt")
        twice = await connection.fetchval(
            "SELECT count(*) FROM (SELECT order_id, to_status FROM order_transition"
            " GROUP BY order_id, to_status HAVING count(*) > 1) AS repeated"
        )
        pending = await connection.fetchval("SELECT count(*) FROM ipn_receipt WHERE verdict IS NULL")
    finally:
        await connection.close()
    return max(0, answered - stored), twice, pending


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: `make bench` installs it (Debian package wrk)")
    directory = Path(tempfile.mkdtemp(prefix="bench-ipn-"))
    rsa_keys = make_rsa_keys(directory)
    database_url, drop = new_postgres_database()
    baseline_url, drop_baseline = new_postgres_database()
    settings = keyed_settings(database_url, rsa_keys)
    try:
        asyncio.run(create_schema(database_url))
        count = len(LEVELS) * (SPREAD + BURST_ORDERS)
        order_ids = asyncio.run(seed_orders(database_url, "bench@example.com", count))
        loads = workloads(settings, rsa_keys.alix.private, order_ids)
        ours_port, bare_port = free_port(), free_port()
        # The load comes from here: Alix Pay's address, never limited. No access log, as for the baseline (a
        # deployment behind a proxy that logs requests, docs/deploy.md).
        ours_env = app_env(database_url, rsa_keys, ipn_allowed_sources="127.0.0.1", log_access="false")
        bare_env = {
            "BARE_ALIX_PUBLIC_KEY_FILE": str(rsa_keys.alix.public),
            "BARE_SECRET_KEY": settings.alixpay.secret_key.get_secret_value(),
            "BARE_DSN": baseline_url.replace("postgresql+asyncpg://", "postgresql://"),
        }
        ours_args = [sys.executable, "-m", "webapp", "serve", "--port", str(ours_port)]
        bare_args = [sys.executable, "-m", "uvicorn", "--factory", "tests.perf.bare_ipn:create_app"]
        bare_args += ["--port", str(bare_port), "--log-level", "warning"]
        ours_url, bare_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{bare_port}"
        with (
            running_process(
                ours_args, env=ours_env, log_file=directory / "ours.log", ready_url=f"{ours_url}/healthz", what="app"
            ) as ours,
            running_process(
                bare_args,
                env=bare_env,
                log_file=directory / "bare.log",
                ready_url=f"{bare_url}/healthz",
                what="baseline",
            ) as bare,
        ):
            report(loads, (ours_url, ours.pid), (bare_url, bare.pid), database_url)
    finally:
        drop()
        drop_baseline()


def report(
    loads: dict[tuple[str, int], list[bytes]], ours: tuple[str, int], bare: tuple[str, int], database_url: str
) -> None:
    """`ours` and `bare`: each server's URL and process id."""
    version = asyncio.run(_server_version())
    print(f"IPN ingest on {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version}")  # noqa: T201
    print(f"load from wrk ({WRK_SCRIPT.name}), one thread, {DURATION} s per run, on the same machine")  # noqa: T201
    columns = ("ours/s", "p50 ms", "p99 ms", "CPU ms", "PG ms", "bare/s", "p50 ms", "p99 ms", "CPU ms", "PG ms")
    print(f"{'shape':6} {'conc':>4} " + " ".join(f"{column:>8}" for column in (*columns, "ratio", "CPU ×")))  # noqa: T201
    answered = 0
    directory = Path(tempfile.mkdtemp(prefix="bench-ipn-wrk-"))
    for (shape, level), bodies in loads.items():
        runs = drive(*ours, bodies, level, directory), drive(*bare, bodies, level, directory)
        answered += runs[0].answered
        figures = [
            f"{run.rate:>8.0f} {run.p50:>8.1f} {run.p99:>8.1f} {run.cpu_ms:>8.2f} {run.postgres_ms:>8.2f}"
            for run in runs
        ]
        print(  # noqa: T201
            f"{shape:6} {level:>4} {' '.join(figures)} "
            f"{runs[0].rate / runs[1].rate:>8.2f} {runs[0].cpu_ms / runs[1].cpu_ms:>8.1f}"
        )
    time.sleep(1)
    lost, twice, pending = asyncio.run(checks(database_url.replace("postgresql+asyncpg://", "postgresql://"), answered))
    print(f"receipts lost: {lost}, statuses applied twice: {twice}, left unprocessed: {pending}")  # noqa: T201


async def _server_version() -> str:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
