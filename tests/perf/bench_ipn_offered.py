"""IPN intake under an offered load: the highest rate each server keeps up with, ours against the bare receiver.

Alix Pay's deliveries do not wait for one another: a status change is notified when it happens. `wrk` (the ingest
benchmark) keeps 16 or 64 requests in flight and sends the next when one is answered, so a batching server meets
its requests in cohorts. Here the IPNs are offered open-loop (`offered_load.py`): first deliveries of distinct orders
at a fixed rate, the rate raised step by step, each server in turn at each step (ours, the bare receiver and the
applying baseline, as `bench_ipn_ingest.py` starts them). A server keeps up with a rate when every IPN of the step
was answered 2xx and the 99th percentile, counted from when each was due, stayed under 40 ms (issue 30's p99);
its ladder stops at the second rate in a row it does not keep up with (a rate missed once, by one slow moment of the
shared machine, does not end it). Prints each step, then each server's highest rate kept up with, its CPU per IPN
there, and ours against bare and the applying baseline. Not a test: `make bench` (needs the local PostgreSQL).
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import libpq_url  # noqa: E402
from tests.integration.ipn_bodies import ipn_body  # noqa: E402
from tests.perf.bench_ipn_ingest import IpnServers, checks, ipn_servers  # noqa: E402
from tests.perf.offered_load import Offered, offer, post_request  # noqa: E402
from tests.processes import cpu_seconds, served_loop  # noqa: E402

RATES = tuple(int(round(400 * 1.12**step, -1)) for step in range(24))
"""IPNs per second offered, step by step: 400, 450, 500, 560 … 5 420, 12 % apart."""
FRESH_UP_TO = 2500
"""Rates up to this one get IPNs of orders of their own; above it the bodies of the steps before come again (the
bare receiver only stores them; ours would answer them as duplicates, which the report then says)."""
WARM_UP = (300, 1.0)
"""A step each server takes first, not reported: its pool's connections and compiled statements."""
SECONDS = 2.0
"""Per server and step."""
P99_MS = 40.0
NAMES = ("ours", "bare", "applying")
Result = tuple[Offered, float]
"""What a step gave a server, and the server's CPU ms per IPN answered."""


def kept_up(run: Offered) -> bool:
    return run.answered == run.sent and not run.failed and not run.late and run.p99 < P99_MS


def drive(url: str, pid: int, requests: list[bytes], rate: float) -> Result:
    address = urlsplit(url)
    before = cpu_seconds(pid)
    with asyncio.Runner(loop_factory=served_loop()) as runner:
        run = runner.run(offer(address.hostname or "", address.port or 80, requests, rate))
    return run, (cpu_seconds(pid) - before) * 1000 / max(run.answered, 1)


def cell(result: Result | None) -> str:
    if result is None:
        return f"{'-':>12} {'':>6} {'':>7} {'':>7}"
    run, cpu_ms = result
    mark = " " if kept_up(run) else "*"
    return f"{run.answered_rate:>11.0f}{mark} {run.p50:>6.1f} {run.p99:>7.1f} {cpu_ms:>7.2f}"


def climb(servers: list[tuple[str, int]], steps: list[list[bytes]]) -> tuple[dict[str, Result | None], int]:
    """Every server up the ladder until two rates in a row it does not keep up with; each one's best, and ours'
    answers."""
    best: dict[str, Result | None] = dict.fromkeys(NAMES)
    missed = dict.fromkeys(NAMES, 0)
    climbing = list(zip(NAMES, servers, strict=True))
    answered = 0
    header = " ".join(f"{name + ' /s':>12} {'p50':>6} {'p99':>7} {'CPU ms':>7}" for name in NAMES)
    print(f"{'rate':>6} {header}")  # noqa: T201
    for step, (rate, requests) in enumerate(zip(RATES, steps, strict=True)):
        if not climbing:
            break
        turn = step % len(climbing)
        results = {name: drive(*server, requests, rate) for name, server in climbing[turn:] + climbing[:turn]}
        answered += results["ours"][0].answered if "ours" in results else 0
        for name, result in results.items():
            if kept_up(result[0]):
                best[name], missed[name] = result, 0
            else:
                missed[name] += 1
        climbing = [(name, server) for name, server in climbing if missed[name] < 2]
        if rate > FRESH_UP_TO and "ours" in results:
            print(f"  (ours was sent IPNs again at {rate}/s: duplicates, answered without a status change)")  # noqa: T201
        print(f"{rate:>6} " + " ".join(cell(results.get(name)) for name in NAMES))  # noqa: T201
    print("(*: not kept up with: an IPN unanswered or not 2xx, or p99 over the limit)")  # noqa: T201
    return best, answered


def ladder(running: IpnServers) -> tuple[list[bytes], list[list[bytes]]]:
    """The warm-up's requests and each step's: first deliveries up to FRESH_UP_TO, then the same bodies again."""
    orders = iter(running.order_ids)

    def fresh(count: int) -> list[bytes]:
        return [
            post_request("/ipn/alixpay", ipn_body(running.settings, running.alix_key, order_id=next(orders)))
            for _ in range(count)
        ]

    warm_up = fresh(int(WARM_UP[0] * WARM_UP[1]))
    steps = [fresh(int(rate * SECONDS)) for rate in RATES if rate <= FRESH_UP_TO]
    sent = [request for step in steps for request in step]
    for rate in RATES[len(steps) :]:
        count = int(rate * SECONDS)
        steps.append([sent[index % len(sent)] for index in range(count)])
    return warm_up, steps


def main() -> None:
    fresh = int(WARM_UP[0] * WARM_UP[1]) + sum(int(rate * SECONDS) for rate in RATES if rate <= FRESH_UP_TO)
    with ipn_servers(fresh, Path(tempfile.mkdtemp(prefix="bench-offered-"))) as running:
        warm_up, steps = ladder(running)
        for server in running.servers:
            drive(*server, warm_up, WARM_UP[0])
        print(  # noqa: T201
            f"IPN intake under an offered load on {os.cpu_count()} cores: first deliveries at a fixed rate,"
            f" {SECONDS:.0f} s per server and step; kept up: all answered 2xx, p99 from due < {P99_MS:.0f} ms"
        )
        best, answered = climb(running.servers, steps)
        for name, result in best.items():
            kept = (
                f"{result[0].rate:.0f} IPN/s, p99 {result[0].p99:.1f} ms, CPU {result[1]:.2f} ms/IPN"
                if result
                else "none"
            )
            print(f"{name}: kept up with {kept}")  # noqa: T201
        ours, bare, applying = (best[name] for name in NAMES)
        if ours and bare and applying:
            print(  # noqa: T201
                f"ours against bare: {ours[0].rate / bare[0].rate:.2f}; against the applying baseline:"
                f" {ours[0].rate / applying[0].rate:.2f}"
            )
        lost, twice, pending = asyncio.run(checks(libpq_url(running.database_url), answered))
        print(f"receipts lost: {lost}, statuses applied twice: {twice}, left unprocessed: {pending}")  # noqa: T201


if __name__ == "__main__":
    main()
