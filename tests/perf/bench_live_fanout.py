"""Live fan-out: 1 000 SSE watchers of order pages spread over two app instances on one PostgreSQL database.

IPNs are posted to instance A only, so half the watchers hear every update across instances (LISTEN/NOTIFY).
Beside it, in the same run, a bare fan-out (`bare_fanout.py`: the same framework, server and channel, no session,
no database, no rendering) on two instances of its own, twice: with its one-line fragment ("bare") and with our
order page's status fragment sent as it is ("bare=": the same bytes per message on the wire).
Prints IPN → update read p50/p95, missed updates, memory per watcher (the instances' RSS before and after the
watchers connect, and over the second half of them alone: what one more watcher costs once the pools have filled;
before, each instance serves one stream of an order nobody else watches, as an instance in service has: what its
first stream costs once, templates compiled and modules imported, is printed apart per instance),
and app CPU per update (both instances, from /proc; ours also without the fan-out, the IPN alone).
Not a test: `make bench`.
Also per instance: the fan-out's CPU per update (less the same instance's cost of an update nobody watches, the two
kinds posted in turn, each followed by a pause for its fan-out, and each one's CPU read around it) and,
for ours, the fragments drawn from a database read per update (none where the change's status card came along).
The CPU per update counts the updates before the final status; at the final status our pages' streams end (the
baseline's never do), so its CPU per update, less the same, is printed apart ("final").
And the steady relay: once every watcher is connected, 2 000 notifications sent straight into PostgreSQL (ours
carrying each order's current status card, as the publisher sends it), so that both instances only relay; CPU per
notification per instance, less the same instance's CPU over as long idle (the figure the IPN's own work and a
stream's opening and ending do not blur).
Target (issue 30): p95 < 50 ms, memory per watcher ≤ 1.3 times the baseline's, the fan-out's CPU per update
≤ 2.5 times the baseline's on every instance, no database read per update on the relaying instance, 0 missed.
"""

import asyncio
import contextlib
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import create_schema, keyed_settings, make_rsa_keys  # noqa: E402
from tests.integration.conftest import LiveApp, app_env, libpq_url, new_postgres_database, seed_orders  # noqa: E402
from tests.integration.flow import signed_in_client  # noqa: E402
from tests.integration.ipn_bodies import ipn_body  # noqa: E402
from tests.oidc_support import running_idp  # noqa: E402
from tests.perf.bare_fanout import FRAGMENT  # noqa: E402
from tests.processes import cpu_seconds, running_process  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.db import make_engine  # noqa: E402
from webapp.dev.stack import free_port  # noqa: E402
from webapp.orders.live import order_channel  # noqa: E402
from webapp.orders.storage import status_cards  # noqa: E402

WATCHERS = 1000
ORDERS = 50  # 20 watchers per order, every other one on each instance
STEPS = ("PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS")  # three updates per order
SPACING = 0.02  # seconds between two updates
QUIET_ORDERS = ORDERS  # the same updates posted with nobody watching, in turn with the watched ones: the cost
# of an update without its fan-out
RELAYED = 2000  # notifications sent straight into PostgreSQL while every watcher listens: both instances relay
RELAY_SPACING = 0.003
PAGE = os.sysconf("SC_PAGE_SIZE")
EMAIL = "user@example.com"


@dataclass
class Watcher:
    """One SSE connection read with asyncio streams (an HTTP client per watcher would dwarf the server)."""

    key: str
    arrivals: list[float] = field(default_factory=list)
    """When each `status` message after the first arrived."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self, url: str, path: str, cookie: str) -> None:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
        )
        writer.write(request.encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            buffer = ""
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                buffer += (await reader.readexactly(size + 2))[:-2].decode().replace("\r\n", "\n")
                while "\n\n" in buffer:
                    message, buffer = buffer.split("\n\n", 1)
                    if "event: status" in message and "data:" in message:
                        self._heard()
        finally:
            writer.close()

    def _heard(self) -> None:
        if self.ready.is_set():
            self.arrivals.append(time.perf_counter())
        else:
            self.ready.set()


def cpu_of(pids: list[int]) -> list[float]:
    """Each process's CPU seconds so far."""
    return [cpu_seconds(pid) for pid in pids]


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE // 1024


@dataclass
class Figures:
    p50: float
    p95: float
    missed: int
    kib_per_watcher: float
    """The instances' growth over all the watchers, one-off growth included (connection and thread pools filling)."""
    first_stream_mib: float
    """Per instance, its growth at its first stream (opened and closed before the watchers come)."""
    marginal_kib_per_watcher: float
    """The growth over the second half of the watchers alone: what one more watcher costs."""
    cpu_ms_per_update: float
    quiet_cpu_ms: float
    instance_cpu_ms: list[float]
    """Per instance, CPU per update over the updates before the final status, less its CPU per update with nobody
    watching: the fan-out's own cost there (the first instance receives the updates, the second only relays them)."""
    final_cpu_ms: list[float]
    """The same over the final status, where our pages' streams end and the baseline's go on."""
    relay_ms: list[float]
    """Per instance, CPU per notification relayed to its watchers (less the same time idle): the steady relay."""
    reads_per_update: list[float] | None = None
    """Per instance, fragments drawn from a database read per update (ours: `cashout_live_drawings_total`)."""


async def measure(
    urls: list[str],
    pids: list[int],
    path_of: Callable[[str], str],
    cookie: str,
    keys_watched: list[str],
    update: Callable[[str, str], Awaitable[None]],
    quiet: list[str],
    relayed: "Relayed",
    reads: Callable[[], Awaitable[list[float]]] | None = None,
) -> Figures:
    """Open the watchers, relay notifications sent straight into PostgreSQL, send STEPS updates per watched key, each
    followed by the same update of a key nobody watches, and read what arrived when."""
    final = len(STEPS) - 1
    fresh = sum(rss_kib(pid) for pid in pids)
    await first_streams(urls, quiet[0], path_of(quiet[0]), cookie)
    memory = [sum(rss_kib(pid) for pid in pids)]
    watchers = [Watcher(keys_watched[index % len(keys_watched)]) for index in range(WATCHERS)]
    tasks: list[asyncio.Task] = []
    for half in (watchers[: WATCHERS // 2], watchers[WATCHERS // 2 :]):
        tasks += [
            asyncio.create_task(watcher.watch(urls[index % len(urls)], path_of(watcher.key), cookie))
            for index, watcher in enumerate(half)
        ]
        await asyncio.wait_for(asyncio.gather(*(watcher.ready.wait() for watcher in half)), 120)
        await asyncio.sleep(1)
        memory.append(sum(rss_kib(pid) for pid in pids))
    kib = (memory[2] - memory[0]) / WATCHERS
    marginal_kib = (memory[2] - memory[1]) / (WATCHERS - WATCHERS // 2)
    relay_ms = await relay(pids, relayed, watchers)
    acknowledged: dict[tuple[str, int], float] = {}
    reads_before = await reads() if reads else None
    spent = {(watched, last): [0.0] * len(pids) for watched in (True, False) for last in (True, False)}
    """CPU seconds per instance over the watched and the unwatched updates, before the final status and at it."""
    for step, status in enumerate(STEPS):
        if step == final:  # at the final status our pages' streams end (the baseline's never do): counted apart
            await heard(watchers, final)
        for key, unwatched in zip(keys_watched, quiet, strict=True):
            acknowledged[key, step] = await timed(update, key, status, pids, spent[True, step == final])
            await timed(update, unwatched, status, pids, spent[False, step == final])
    await heard(watchers, len(STEPS))
    reads_per_update = None
    if reads and reads_before is not None:
        reads_per_update = [
            (after - before) / (len(STEPS) * len(keys_watched))
            for before, after in zip(reads_before, await reads(), strict=True)
        ]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays = [
        (arrival - acknowledged[watcher.key, step]) * 1000
        for watcher in watchers
        for step, arrival in enumerate(watcher.arrivals[: len(STEPS)])
    ]
    missed = WATCHERS * len(STEPS) - len(delays)
    cuts = statistics.quantiles(delays, n=100)
    watched_each, quiet_each = (
        per_update(spent[watched, False], final * len(keys_watched)) for watched in (True, False)
    )
    final_each, quiet_final_each = (per_update(spent[watched, True], len(keys_watched)) for watched in (True, False))
    return Figures(
        cuts[49],
        cuts[94],
        missed,
        kib,
        (memory[0] - fresh) / len(pids) / 1024,
        marginal_kib,
        sum(watched_each),
        sum(quiet_each),
        [used - alone for used, alone in zip(watched_each, quiet_each, strict=True)],
        [used - alone for used, alone in zip(final_each, quiet_final_each, strict=True)],
        relay_ms,
        reads_per_update,
    )


async def first_streams(urls: list[str], key: str, path: str, cookie: str) -> None:
    """One stream of `key` on each instance, opened until its first message and closed: each has served one."""
    firsts = [Watcher(key) for _ in urls]
    opened = [asyncio.create_task(watcher.watch(url, path, cookie)) for watcher, url in zip(firsts, urls, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(watcher.ready.wait() for watcher in firsts)), 30)
    for task in opened:
        task.cancel()
    await asyncio.gather(*opened, return_exceptions=True)
    await asyncio.sleep(1)


async def timed(
    update: Callable[[str, str], Awaitable[None]], key: str, status: str, pids: list[int], spent: list[float]
) -> float:
    """Post one update and wait SPACING for its fan-out, adding each instance's CPU meanwhile to `spent`; returns when
    it was acknowledged. A watched update and an unwatched one take turns, so that a slow moment of the shared
    machine falls on both: their difference is the fan-out's cost (the first instance receives the updates, the
    second only relays them)."""
    before = cpu_of(pids)
    await update(key, status)
    acknowledged = time.perf_counter()
    await asyncio.sleep(SPACING)
    for index, (used_before, used_after) in enumerate(zip(before, cpu_of(pids), strict=True)):
        spent[index] += used_after - used_before
    return acknowledged


def per_update(spent: list[float], updates: int) -> list[float]:
    """Per instance, CPU ms per update."""
    return [used / updates * 1000 for used in spent]


async def heard(watchers: list[Watcher], steps: int) -> None:
    """Until every watcher heard this many updates (or 15 s went by: the rest count as missed)."""
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline and any(len(watcher.arrivals) < steps for watcher in watchers):
        await asyncio.sleep(0.05)


@dataclass
class Relayed:
    """What the steady relay sends: to which database, and each watched key's channel and payload."""

    dsn: str
    messages: list[tuple[str, str]]


async def relay(pids: list[int], relayed: Relayed, watchers: list[Watcher]) -> list[float]:
    """Per instance, CPU ms per notification sent straight into PostgreSQL (both instances relay: no IPN, no
    commit, no publisher), less the same instance's CPU over as long idle; the watchers hear every one of them."""
    each = functools.partial(cpu_of, pids)
    heard = sum(len(watcher.arrivals) for watcher in watchers)
    connection = await asyncpg.connect(relayed.dsn)
    try:
        started, began = each(), time.perf_counter()
        for index in range(RELAYED):
            channel, payload = relayed.messages[index % len(relayed.messages)]
            await connection.execute("SELECT pg_notify($1, $2)", channel, payload)
            await asyncio.sleep(RELAY_SPACING)
        await asyncio.sleep(0.5)
        spent, took = each(), time.perf_counter() - began
        await asyncio.sleep(took)
        idle = each()
    finally:
        await connection.close()
    expected = RELAYED * WATCHERS // len(relayed.messages)
    arrived = sum(len(watcher.arrivals) for watcher in watchers) - heard
    assert arrived == expected, f"relayed {arrived} of {expected} messages"
    for watcher in watchers:
        watcher.arrivals.clear()  # the updates' latencies start from here
    return [
        ((after - before) - (rest - after)) / RELAYED * 1000
        for before, after, rest in zip(started, spent, idle, strict=True)
    ]


@contextlib.contextmanager
def instances(args_of: Callable[[int], list[str]], env: dict[str, str], log_dir: Path, name: str) -> Iterator:
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                running_process(
                    args_of(port),
                    env={**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
                    log_file=log_dir / f"{name}-{port}.log",
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                    what=f"{name} on {port}",
                )
            )
            for port in ports
        ]
        yield [f"http://127.0.0.1:{port}" for port in ports], [process.pid for process in processes]


def print_row(name: str, figures: Figures) -> None:
    reads = " / ".join(f"{count:.2f}" for count in figures.reads_per_update) if figures.reads_per_update else "-"
    print(  # noqa: T201
        f"{name:6} {figures.p50:>8.1f} {figures.p95:>8.1f} {figures.missed:>7} {figures.kib_per_watcher:>10.1f}"
        f" {figures.marginal_kib_per_watcher:>11.1f} {figures.first_stream_mib:>9.1f}"
        f" {figures.cpu_ms_per_update:>12.2f} {figures.quiet_cpu_ms:>12.2f}"
        f" {' / '.join(f'{cpu:.2f}' for cpu in figures.instance_cpu_ms):>15} {reads:>13}"
        f" {' / '.join(f'{cpu:.3f}' for cpu in figures.relay_ms):>15}"
        f" {' / '.join(f'{cpu:.2f}' for cpu in figures.final_cpu_ms):>15}"
    )


def print_ratios(ours: Figures, bare: Figures, name: str) -> None:
    fan_out = ours.cpu_ms_per_update - ours.quiet_cpu_ms
    print(  # noqa: T201
        f"ratios to {name}: p95 {ours.p95 / bare.p95:.1f},"
        f" memory {ours.kib_per_watcher / bare.kib_per_watcher:.2f}"
        f" (one more watcher: {ours.marginal_kib_per_watcher / bare.marginal_kib_per_watcher:.2f}),"
        f" CPU per update {ours.cpu_ms_per_update / bare.cpu_ms_per_update:.1f}"
        f" (without the IPN's own cost: {fan_out / bare.cpu_ms_per_update:.1f});"
        " the fan-out's CPU per instance (receiving / relaying): "
        + " / ".join(
            f"{mine / theirs:.1f}" for mine, theirs in zip(ours.instance_cpu_ms, bare.instance_cpu_ms, strict=True)
        )
        + "; the steady relay's CPU per notification per instance: "
        + " / ".join(f"{mine / theirs:.2f}" for mine, theirs in zip(ours.relay_ms, bare.relay_ms, strict=True))
    )


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    rsa_keys = make_rsa_keys(directory)
    database_url, drop = new_postgres_database()
    baseline_url, drop_baseline = new_postgres_database()
    settings = keyed_settings(database_url, rsa_keys)
    try:
        asyncio.run(create_schema(database_url))
        with running_idp(directory / "idp.log") as idp:
            env = app_env(
                database_url, rsa_keys, idp=idp, ipn_allowed_sources="127.0.0.1", rate_limit_sign_in="1000000"
            )
            ours = lambda port: [sys.executable, "-m", "webapp", "serve", "--port", str(port)]  # noqa: E731
            bare = lambda port: [  # noqa: E731
                sys.executable, "-m", "uvicorn", "--factory", "tests.perf.bare_fanout:create_app",
                "--port", str(port), "--log-level", "warning",
            ]  # fmt: skip
            bare_env = {"BARE_DSN": libpq_url(baseline_url)}
            print(  # noqa: T201
                f"Live fan-out on {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL LISTEN/NOTIFY;"
                f" {WATCHERS} watchers of {ORDERS} orders over 2 instances, {len(STEPS)} updates per order posted to"
                " the first"
            )
            print(  # noqa: T201
                f"{'':6} {'p50 ms':>8} {'p95 ms':>8} {'missed':>7} {'KiB/watch':>10} {'KiB/1 more':>11} {'1st MiB':>9}"
                f" {'CPU ms/upd':>12}"
                f" {'no watcher':>12} {'fan-out A / B':>15} {'reads/upd A/B':>13} {'relay ms A / B':>15}"
                f" {'final A / B':>15}"
            )
            fragment_file = directory / "fragment.html"
            with instances(ours, env, directory, "ours") as (urls, pids):
                figures = asyncio.run(run_ours(urls, pids, settings, rsa_keys, database_url, fragment_file))
            print_row("ours", figures)
            with instances(bare, bare_env, directory, "bare") as (urls, pids):
                baseline = asyncio.run(run_bare(urls, pids, bare_env["BARE_DSN"]))
            print_row("bare", baseline)
            same_bytes_env = {**bare_env, "BARE_FRAGMENT_FILE": str(fragment_file)}
            with instances(bare, same_bytes_env, directory, "bare-same-bytes") as (urls, pids):
                same_bytes = asyncio.run(run_bare(urls, pids, bare_env["BARE_DSN"]))
            print_row("bare=", same_bytes)
            print(  # noqa: T201
                f"(bare: a {len(FRAGMENT)}-byte fragment; bare=: our order page's status fragment,"
                f" {len(fragment_file.read_bytes())} bytes, sent as it is)"
            )
            print_ratios(figures, baseline, "bare")
            print_ratios(figures, same_bytes, "bare=")
    finally:
        drop()
        drop_baseline()


async def run_ours(
    urls: list[str], pids: list[int], settings: Settings, rsa_keys, database_url: str, fragment_file: Path
) -> Figures:
    """Our figures; `fragment_file` gets the status fragment of a watched order, for the same-bytes baseline."""
    person = await signed_in_client(LiveApp(urls[0], settings, None), EMAIL)  # type: ignore[arg-type]
    cookie = "; ".join(f"{name}={value}" for name, value in person.cookies.items())
    watched = await seed_orders(database_url, EMAIL, ORDERS)
    quiet = await seed_orders(database_url, EMAIL, QUIET_ORDERS)
    bodies = {
        (key, status): ipn_body(settings, rsa_keys.alix.private, order_id=key, status=status)
        for key in watched + quiet
        for status in STEPS
    }
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:

        async def update(key: str, status: str) -> None:
            answer = await client.post("/ipn/alixpay", content=bodies[key, status])
            assert answer.json() == {"verdict": "applied"}, answer.text

        async def reads() -> list[float]:
            return [await database_drawings(url) for url in urls]

        dsn = libpq_url(database_url)
        relayed = Relayed(dsn, await current_cards(database_url, watched))
        figures = await measure(
            urls, pids, lambda key: f"/orders/{key}/events", cookie, watched, update, quiet, relayed, reads
        )
    fragment_file.write_text((await person.get(f"/orders/{watched[0]}/status")).text)
    await person.aclose()
    return figures


async def current_cards(database_url: str, keys: list[str]) -> list[tuple[str, str]]:
    """Each order's channel and a live update carrying its current status card, as the publisher sends it."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            ids = (
                await connection.execute(
                    text("SELECT id FROM cashout_order WHERE external_order_id = ANY(:keys)"), {"keys": keys}
                )
            ).scalars()
            cards = await status_cards(engine, list(ids))
    finally:
        await engine.dispose()
    return [
        (order_channel(order_id), json.dumps({"order": order_id, "card": card.wire()}))
        for order_id, card in cards.items()
    ]


async def database_drawings(url: str) -> float:
    """The instance's live fragments drawn from a database read so far (the rest came with their notification)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        scrape = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "cashout_live_drawings_total" and sample.labels.get("source") == "database"
    )


async def run_bare(urls: list[str], pids: list[int], dsn: str) -> Figures:
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:

        async def update(key: str, status: str) -> None:
            assert (await client.post(f"/publish/{key}")).status_code == 200

        watched = [f"order-{index}" for index in range(ORDERS)]
        quiet = [f"quiet-{index}" for index in range(QUIET_ORDERS)]
        relayed = Relayed(dsn, [(f"order:{key}", "relayed") for key in watched])
        return await measure(urls, pids, lambda key: f"/events/{key}", "none=1", watched, update, quiet, relayed)


if __name__ == "__main__":
    main()
