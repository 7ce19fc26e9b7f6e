"""IPN ingest: our `/ipn/alixpay` against a bare receiver (verify + insert, `bare_ipn.py`), same run, PostgreSQL.

Signed IPNs at concurrency 1, 16 and 64 in two shapes: spread over many orders, and bursts where each status of an
order arrives five times, partly out of order. Prints IPN/s, p50/p99 acknowledgement, each server process's CPU per
IPN answered and PostgreSQL's (all its processes: they share the two cores), and ours against the baseline (rate
ratio, CPU multiple), then checks that no receipt was lost, no status applied twice and none left unprocessed.
Beside them, the applying baseline (`bare_ipn.py` with `BARE_APPLY=1`, on a copy of our database): the least our
data model asks of a status change, one IPN at a time. What lies between it and ours is our code; between bare and
it, the data model. Each shape and level runs in slices, ours-bare-applying-applying-bare-ours, so that the servers
meet the same moments of a shared, noisy machine; each server's slices go on through the bodies where its last one
stopped. Not a test: `make bench` (needs the local PostgreSQL). Target (issue 30): ≥ 0.33 of the bare receiver
in both shapes, p99 < 40 ms at 16.
"""

import asyncio
import contextlib
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import create_schema, keyed_settings, make_rsa_keys  # noqa: E402
from tests.integration.conftest import (  # noqa: E402
    POSTGRES_ADMIN_DSN,
    app_env,
    libpq_url,
    new_postgres_database,
    seed_orders,
)
from tests.integration.ipn_bodies import ipn_body  # noqa: E402
from tests.processes import cpu_seconds, postgres_cpu, postgres_cpu_since, running_process  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.dev.stack import free_port  # noqa: E402

LEVELS = (1, 16, 64)
SPREAD = {1: 1500, 16: 8000, 64: 12000}
"""IPNs per level, one order each: more than either server answers in DURATION, so every one is a first delivery
(wrk would post them again from the start, as duplicates; the report says so if it did)."""
BURST_ORDERS = 100  # orders per level, 4 statuses x 5 deliveries each
DURATION = 4  # seconds per server, shape and level, in two slices (ours-bare-bare-ours)
WRK_SCRIPT = Path(__file__).with_name("ipn.lua")
STATUSES = ("AWAITING_PAYMENT", "PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS")


def workloads(settings: Settings, key: Path, order_ids: list[str]) -> dict[tuple[str, int], list[bytes]]:
    ids = iter(order_ids)
    loads: dict[tuple[str, int], list[bytes]] = {}
    for level in LEVELS:
        loads["spread", level] = [
            ipn_body(settings, key, order_id=next(ids), status="PAYMENT_COMPLETED") for _ in range(SPREAD[level])
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
    """One server's slices of one shape and level, added up."""

    answered: int
    seconds: float
    cpu_seconds: float
    """The server's CPU."""
    postgres_seconds: float
    """All PostgreSQL processes' CPU (they share the machine's two cores with the server)."""
    p50: float
    """The slices' medians, weighted by what each answered."""
    p99: float
    """The worst slice's."""

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.answered

    @property
    def postgres_ms(self) -> float:
        return self.postgres_seconds * 1000 / self.answered

    def __add__(self, other: "Run") -> "Run":
        answered = self.answered + other.answered
        return Run(
            answered,
            self.seconds + other.seconds,
            self.cpu_seconds + other.cpu_seconds,
            self.postgres_seconds + other.postgres_seconds,
            (self.p50 * self.answered + other.p50 * other.answered) / answered,
            max(self.p99, other.p99),
        )


def drive(url: str, pid: int, bodies_file: Path, start: int, concurrency: int, seconds: int) -> Run:
    """The bodies from number `start` on, posted in turn by wrk over `concurrency` connections (one wrk thread)."""
    cpu_before, postgres_before = cpu_seconds(pid), postgres_cpu()
    output = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(WRK_SCRIPT), url],
        env={**os.environ, "BODIES": str(bodies_file), "START": str(start)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before
    postgres = postgres_cpu_since(postgres_before)
    answered, took, unit = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", output).groups()
    return Run(
        max(int(answered), 1),
        float(took) / (1000 if unit == "ms" else 1),
        cpu,
        postgres,
        _latency(output, "50%"),
        _latency(output, "99%"),
    )


def compare(servers: list[tuple[str, int]], bodies: list[bytes], concurrency: int, directory: Path) -> list[Run]:
    """The servers driven in slices, in order and back (ours-bare-bare-ours), each going on through the bodies where
    it stopped."""
    bodies_file = directory / "bodies.txt"
    bodies_file.write_bytes(b"".join(body.replace(b"\n", b"") + b"\n" for body in bodies))
    runs: dict[tuple[str, int], Run] = {}
    for server in [*servers, *reversed(servers)]:
        done = runs.get(server)
        start = done.answered + concurrency if done else 0  # past the ones in flight when the last slice ended
        run = drive(*server, bodies_file, start, concurrency, DURATION // 2)
        runs[server] = done + run if done else run
    return [runs[server] for server in servers]


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


@dataclass(frozen=True)
class IpnServers:
    """The three servers of an IPN benchmark, each on its own database, and what signs their IPNs."""

    settings: Settings
    alix_key: Path
    """Alix Pay's private key (the test one): signs the IPN bodies."""
    order_ids: list[str]
    """Seeded orders awaiting payment, the same in our database and the applying baseline's."""
    servers: list[tuple[str, int]]
    """Ours, bare and the applying baseline: each one's URL and process id."""
    database_url: str
    """Ours."""


@contextlib.contextmanager
def ipn_servers(orders: int, directory: Path) -> Iterator[IpnServers]:
    """Ours (one uvicorn worker), the bare receiver and the applying baseline, running on fresh databases with
    `orders` orders seeded (ours and the applying baseline's the same); dropped afterwards."""
    rsa_keys = make_rsa_keys(directory)
    database_url, drop = new_postgres_database()
    baseline_url, drop_baseline = new_postgres_database()
    settings = keyed_settings(database_url, rsa_keys)
    drop_applying = None
    try:
        asyncio.run(create_schema(database_url))
        order_ids = asyncio.run(seed_orders(database_url, "bench@example.com", orders))
        applying_url, drop_applying = new_postgres_database(copy_of=database_url)  # the same orders
        # The load comes from here: Alix Pay's address, never limited. No access log, as for the baseline (a
        # deployment behind a proxy that logs requests, docs/deploy.md).
        ours_env = app_env(database_url, rsa_keys, ipn_allowed_sources="127.0.0.1", log_access="false")
        bare_env = {
            "BARE_ALIX_PUBLIC_KEY_FILE": str(rsa_keys.alix.public),
            "BARE_SECRET_KEY": settings.alixpay.secret_key.get_secret_value(),
            "BARE_DSN": libpq_url(baseline_url),
        }
        applying_env = {**bare_env, "BARE_APPLY": "1", "BARE_DSN": libpq_url(applying_url)}
        ports = [free_port() for _ in range(3)]
        bare_args = [sys.executable, "-m", "uvicorn", "--factory", "tests.perf.bare_ipn:create_app", "--port"]
        servers = (
            ("app", [sys.executable, "-m", "webapp", "serve", "--port", str(ports[0])], ours_env),
            ("baseline", [*bare_args, str(ports[1]), "--log-level", "warning"], bare_env),
            ("applying", [*bare_args, str(ports[2]), "--log-level", "warning"], applying_env),
        )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        with contextlib.ExitStack() as stack:
            pids = [
                stack.enter_context(
                    running_process(
                        args, env=env, log_file=directory / f"{what}.log", ready_url=f"{url}/healthz", what=what
                    )
                ).pid
                for (what, args, env), url in zip(servers, urls, strict=True)
            ]
            yield IpnServers(
                settings, rsa_keys.alix.private, order_ids, list(zip(urls, pids, strict=True)), database_url
            )
    finally:
        drop()
        drop_baseline()
        if drop_applying:
            drop_applying()


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: `make bench` installs it (Debian package wrk)")
    count = sum(SPREAD[level] for level in LEVELS) + len(LEVELS) * BURST_ORDERS
    with ipn_servers(count, Path(tempfile.mkdtemp(prefix="bench-ipn-"))) as running:
        loads = workloads(running.settings, running.alix_key, running.order_ids)
        report(loads, running.servers, running.database_url)


def report(loads: dict[tuple[str, int], list[bytes]], servers: list[tuple[str, int]], database_url: str) -> None:
    """`servers`: ours, bare and the applying baseline, each one's URL and process id."""
    version = asyncio.run(_server_version())
    print(f"IPN ingest on {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version}")  # noqa: T201
    print(f"load from wrk ({WRK_SCRIPT.name}), one thread, {DURATION} s per server in two slices, on the same machine")  # noqa: T201
    columns = ("ours/s", "p50 ms", "p99 ms", "CPU ms", "PG ms", "bare/s", "p50 ms", "p99 ms", "CPU ms", "PG ms")
    print(f"{'shape':6} {'conc':>4} " + " ".join(f"{column:>8}" for column in (*columns, "ratio", "CPU ×")))  # noqa: T201
    answered = 0
    applying: list[tuple[str, int, Run, Run, Run]] = []
    directory = Path(tempfile.mkdtemp(prefix="bench-ipn-wrk-"))
    for (shape, level), bodies in loads.items():
        ours, bare, applied = compare(servers, bodies, level, directory)
        answered += ours.answered
        if shape == "spread" and ours.answered + 2 * level > len(bodies):
            print(f"  (ours ran out of spread bodies at {level}: some were sent again, as duplicates)")  # noqa: T201
        print(  # noqa: T201
            f"{shape:6} {level:>4} {_figures(ours)} {_figures(bare)} "
            f"{ours.rate / bare.rate:>8.2f} {ours.cpu_ms / bare.cpu_ms:>8.1f}"
        )
        applying.append((shape, level, applied, ours, bare))
    columns = ("apply/s", "p50 ms", "p99 ms", "CPU ms", "PG ms", "of bare", "ours of it")
    print("the applying baseline: one IPN at a time, stored raw, then its order's status changed and its verdict")  # noqa: T201
    print(f"{'shape':6} {'conc':>4} " + " ".join(f"{column:>8}" for column in columns))  # noqa: T201
    for shape, level, applied, ours, bare in applying:
        print(  # noqa: T201
            f"{shape:6} {level:>4} {_figures(applied)}"
            f" {applied.rate / bare.rate:>8.2f} {ours.rate / applied.rate:>8.2f}"
        )
    time.sleep(1)
    lost, twice, pending = asyncio.run(checks(libpq_url(database_url), answered))
    print(f"receipts lost: {lost}, statuses applied twice: {twice}, left unprocessed: {pending}")  # noqa: T201


def _figures(run: Run) -> str:
    return f"{run.rate:>8.0f} {run.p50:>8.1f} {run.p99:>8.1f} {run.cpu_ms:>8.2f} {run.postgres_ms:>8.2f}"


async def _server_version() -> str:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
