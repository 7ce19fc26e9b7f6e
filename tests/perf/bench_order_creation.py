"""Order creation through the form flow: review then confirm (signing and the create at Alix Pay included).

One app instance (`python -m webapp serve`, PostgreSQL) wired to the sandbox and the mock IdP, as in production.
Signed-in clients at concurrency 1, 8 and 32 each post the form (303), read the review page (the VietQR drawn)
and confirm (303, the order created at the sandbox). Beside it, in the same run, the ceilings: our Alix Pay client
alone creating orders at the sandbox at the same concurrency, and the RSA-2048 sign rate on one core. Also checks
that every confirmed order exists once, that the review page drew one VietQR, and that a request that changed
nothing wrote no session row. Not a test: `make bench`. Target (issue 30): at 8 clients, at least half our
client's own rate against the sandbox, and at most 15 ms of app CPU per order.
"""

import asyncio
import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import RsaKeys, create_schema, make_rsa_keys  # noqa: E402
from tests.integration.conftest import (  # noqa: E402
    PARTNER_CODE,
    SANDBOX_SECRET,
    LiveApp,
    app_env,
    libpq_url,
    make_client,
    new_postgres_database,
    sandbox_env,
)
from tests.integration.flow import FORM, signed_in_client  # noqa: E402
from tests.integration.test_alixpay_sandbox import new_order  # noqa: E402
from tests.oidc_support import running_idp  # noqa: E402
from tests.processes import cpu_seconds, running_process, running_sandbox  # noqa: E402
from webapp.alixpay.crypto import Signer  # noqa: E402
from webapp.dev.stack import free_port  # noqa: E402

LEVELS = (1, 8, 32)
DURATION = 6.0  # seconds of load per level
SUBMISSION = re.compile(r'name="submission_id" value="([^"]+)"')


async def place(client: httpx.AsyncClient) -> None:
    """Review and confirm one order, as the form does it."""
    token = client.cookies["csrftoken"]
    posted = await client.post("/orders/review", data={**FORM, "_csrf_token": token})
    assert posted.status_code == 303, posted.text[:300]
    page = await client.get("/orders/review")
    assert page.status_code == 200 and page.text.count("<svg") == 1, page.text[:300]
    submission_id = SUBMISSION.search(page.text).group(1)  # type: ignore[union-attr]
    placed = await client.post("/orders", data={"submission_id": submission_id, "_csrf_token": token})
    assert placed.status_code == 303, placed.text[:300]


async def load(concurrency: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, float, float, int]:
    """(per second, p50 ms, p95 ms, count) of `one(worker)` run back to back by `concurrency` workers for DURATION."""
    latencies: list[float] = []
    deadline = time.perf_counter() + DURATION

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await one(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[94] * 1000, len(latencies)


def sign_rate(key_file: Path, seconds: float = 2.0) -> float:
    signer, count, deadline = Signer.from_file(key_file), 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        signer.sign(f"{count}|CASH_OUT|100000|{SANDBOX_SECRET}")
        count += 1
    return count / seconds


async def session_writes(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'http_session'"
            )
            or 0
        )
    finally:
        await connection.close()


@contextlib.contextmanager
def profiled(pid: int, level: int) -> Iterator[None]:
    """With BENCH_PROFILE=FILE, py-spy samples the app during the 8-client level (raw stacks, for flame graphs)."""
    target = os.environ.get("BENCH_PROFILE")
    if not target or level != 8:
        yield
        return
    spy_binary = str(Path(sys.executable).with_name("py-spy"))  # installed by `make bench`
    command = [spy_binary, "record", "-r", "200", "-f", "raw", "-o", target, "-p", str(pid), "-d", str(int(DURATION))]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(timeout=30)


async def run(app_url: str, app_pid: int, rsa_keys: RsaKeys, sandbox, dsn: str) -> None:
    live = LiveApp(app_url, None, sandbox)  # type: ignore[arg-type]
    clients = [await signed_in_client(live) for _ in range(max(LEVELS))]
    for client in clients:
        assert (await client.get("/orders/new")).status_code == 200  # the form: its CSRF cookie
    alixpay = make_client(sandbox, rsa_keys, timeout=15.0)

    async def ours(index: int) -> None:
        await place(clients[index])

    async def client_alone(_index: int) -> None:
        await alixpay.create_cashout_or_resolve(new_order(), lang="en")

    columns = ("ours/s", "p50 ms", "p95 ms", "CPU ms", "client/s", "p50 ms", "p95 ms", "ratio")
    print(f"{'conc':>4} " + " ".join(f"{column:>8}" for column in columns))  # noqa: T201
    placed = 0
    for level in LEVELS:
        cpu_before = cpu_seconds(app_pid)
        with profiled(app_pid, level):
            rate, p50, p95, count = await load(level, ours)
        cpu_per_order = (cpu_seconds(app_pid) - cpu_before) / max(count, 1) * 1000
        placed += count
        sandbox.set_faults(drop=True)  # the ceiling's orders are not ours: their IPNs would load the app meanwhile
        alone, alone_p50, alone_p95, _ = await load(level, client_alone)
        sandbox.set_faults(drop=False)
        print(  # noqa: T201
            f"{level:>4} {rate:>8.1f} {p50:>8.1f} {p95:>8.1f} {cpu_per_order:>8.1f}"
            f" {alone:>8.1f} {alone_p50:>8.1f} {alone_p95:>8.1f}"
            f" {rate / alone:>8.2f}"
        )
    print(f"RSA-2048 signatures on one core: {sign_rate(rsa_keys.partner.private):.0f}/s")  # noqa: T201

    before = await session_writes(dsn)
    for client in clients[:8]:
        for _ in range(5):
            assert (await client.get("/orders")).status_code == 200
    await asyncio.sleep(1)  # statistics are sent to the collector asynchronously
    print(f"session rows written by 40 signed-in page views: {await session_writes(dsn) - before}")  # noqa: T201
    connection = await asyncpg.connect(dsn)
    try:
        orders = await connection.fetchval("SELECT count(*) FROM cashout_order")
        twice = await connection.fetchval(
            "SELECT count(*) FROM (SELECT submission_id FROM cashout_order GROUP BY 1 HAVING count(*) > 1) AS s"
        )
    finally:
        await connection.close()
    print(f"orders confirmed: {placed}, stored: {orders}, created twice: {twice}")  # noqa: T201
    for client in clients:
        await client.aclose()
    await alixpay.aclose()


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    rsa_keys = make_rsa_keys(directory)
    database_url, drop = new_postgres_database()
    dsn = libpq_url(database_url)
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(create_schema(database_url))
        sandbox_settings = sandbox_env(rsa_keys, directory, f"{app_url}/ipn/alixpay", SPEED="3600")
        with (
            running_sandbox(sandbox_settings, directory / "sandbox.log") as sandbox,
            running_idp(directory / "idp.log") as idp,
        ):
            env = app_env(
                database_url,
                rsa_keys,
                idp=idp,
                alixpay_url=sandbox.url,
                public_base_url=app_url,
                alixpay_partner_code=PARTNER_CODE,
                alixpay_secret_key=SANDBOX_SECRET,
                rate_limit_orders="1000000",
                rate_limit_sign_in="1000000",
                ipn_allowed_sources="127.0.0.1",
            )
            args = [sys.executable, "-m", "webapp", "serve", "--port", str(port)]
            with running_process(
                args, env=env, log_file=directory / "app.log", ready_url=f"{app_url}/healthz", what="app"
            ) as app:
                print(  # noqa: T201
                    f"Order creation on {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL;"
                    f" one app instance, the sandbox and the IdP on the same machine, {DURATION:.0f} s per level"
                )
                asyncio.run(run(app_url, app.pid, rsa_keys, sandbox, dsn))
    finally:
        drop()


if __name__ == "__main__":
    main()
