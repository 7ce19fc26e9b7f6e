"""Background jobs, each its own task with its own interval and error handling.

A job that raises or hangs holds up no other: receipt replay, reconciliation, clean-up and the alarms run side by
side. A failing job waits longer between rounds (its interval, doubled per failure in a row, at most 32 times),
so a database that is down today is tried again tomorrow without flooding the log. Start-up never depends on a
job, and stopping lets the rounds under way finish (for a few seconds at most) rather than cut a statement in two.
`JobHealth` remembers how each job's rounds went, for the operations page and the alarms.

Within a round, a job that handles items one by one does so through `each_on_its_own`: an item that raises is
logged and handed to the job's own failure path, and every other item of the round is still handled.
"""

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from webapp.metrics import JOB_FAILURES, JOB_ITEM_FAILURES, JOB_LEASE_HELD, JOB_ROUNDS, JOB_SECONDS

logger = logging.getLogger(__name__)
MAX_BACKOFF_FACTOR = 32
STOP_GRACE_SECONDS = 5.0
"""How long a stopping process waits for the rounds under way before it cancels them."""
T = TypeVar("T")


def where_it_failed(exc: BaseException) -> str:
    """The exception's class and innermost frame (a template's line too), for storing and showing to support.

    Enough to find the bug, nothing of the input: the message may quote a body, an address or a key.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{place}"[:200]


async def each_on_its_own(
    job: str,
    items: Iterable[T],
    handle: Callable[[T], Awaitable[object]],
    failed: Callable[[T, Exception], Awaitable[None]] | None = None,
) -> None:
    """Handle every item of one round; an item that raises is logged and passed to `failed`, and the round goes on.

    A `failed` that raises too is logged: that item waits for the next round.
    """
    for item in items:
        try:
            await handle(item)
        except Exception as exc:
            JOB_ITEM_FAILURES.labels(job).inc()
            # The class and place only: an exception's message may quote personal data (the traceback is at DEBUG).
            logger.error("job %s: item %s failed (%s); the round goes on", job, item, where_it_failed(exc))
            logger.debug("job %s: item %s failed", job, item, exc_info=exc)
            if failed is None:
                continue
            try:
                await failed(item, exc)
            except Exception as also:
                logger.error(
                    "job %s: recording the failure of item %s failed too (%s)", job, item, where_it_failed(also)
                )


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[int]]
    """One round; returns how many items it handled (receipts, orders, rows)."""
    each_instance: bool = False
    """Runs on every instance (a heartbeat), never claimed once for the cluster."""
    quiet: bool = False
    """It runs every second: its rounds are logged at DEBUG, and a success is put on the job board only as the first
    round or after a failure (failures always are, so its alarm still counts them): no write a second for nothing."""


@dataclass
class JobState:
    last_round_at: datetime | None = None
    last_success_at: datetime | None = None
    failures_in_a_row: int = 0
    last_error: str = ""
    """The exception class of the last failed round."""


@dataclass
class JobHealth:
    """How each job's rounds went in this process."""

    jobs: dict[str, JobState] = field(default_factory=dict)

    def record(self, name: str, error: BaseException | None) -> JobState:
        state = self.jobs.setdefault(name, JobState())
        state.last_round_at = datetime.now(UTC)
        if error is None:
            state.last_success_at, state.failures_in_a_row = state.last_round_at, 0
        else:
            state.failures_in_a_row += 1
            state.last_error = type(error).__name__
        return state


class Leases(Protocol):
    """Who runs a job's round when several instances share the work (`webapp/job_board.py`)."""

    async def claim(self, name: str, interval: float) -> bool: ...

    async def release(self, name: str) -> None: ...


class Board(Protocol):
    """Where each round's outcome is shared with every instance (`webapp/job_board.py`)."""

    async def record(self, name: str, failed: str | None) -> None:
        """`failed`: the exception class of a failed round; None when it succeeded."""


async def run_job(
    job: Job,
    health: JobHealth,
    stopping: asyncio.Event | None = None,
    leases: Leases | None = None,
    board: Board | None = None,
) -> None:
    """Rounds of `job` until `stopping` is set; a round under way is finished first (see `running`).

    With `leases`, a round runs only where it was claimed: once per interval across the instances. With `board`,
    each round's outcome is shared (this process's `health` still paces its own retries).
    """
    stopping = stopping or asyncio.Event()
    shared_failing: bool | None = None  # what the board last heard of this job from here (None: nothing yet)
    JOB_FAILURES.labels(job.name)  # exported from the start, at 0
    JOB_LEASE_HELD.labels(job.name).set(0)
    JOB_ITEM_FAILURES.labels(job.name)
    while not stopping.is_set():
        started = time.perf_counter()
        try:
            if leases is not None and not job.each_instance and not await leases.claim(job.name, job.interval):
                await _pause(stopping, job.interval)  # another instance has this round
                continue
            JOB_ROUNDS.labels(job.name).inc()
            claimed = leases is not None and not job.each_instance
            JOB_LEASE_HELD.labels(job.name).set(1 if claimed else 0)
            try:
                handled = await job.run()
            finally:
                JOB_LEASE_HELD.labels(job.name).set(0)
                if claimed:
                    await leases.release(job.name)
        except Exception as exc:
            JOB_FAILURES.labels(job.name).inc()
            state, failed = health.record(job.name, exc), type(exc).__name__
            logger.exception(
                "job %s: round failed after %.3f s (%d in a row)",
                job.name,
                time.perf_counter() - started,
                state.failures_in_a_row,
            )
        else:
            state, failed = health.record(job.name, None), None
            logger.log(
                logging.INFO if handled and not job.quiet else logging.DEBUG,
                "job %s: %d handled in %.3f s",
                job.name,
                handled,
                time.perf_counter() - started,
            )
        JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        quiet_again = job.quiet and failed is None and shared_failing is False  # a success after a shared success
        if board is not None and not quiet_again:
            await _share(board, job.name, failed)
            shared_failing = failed is not None
        await _pause(stopping, job.interval * min(2**state.failures_in_a_row, MAX_BACKOFF_FACTOR))


async def _share(board: Board, name: str, failed: str | None) -> None:
    """The round's outcome on the board; a board that cannot be written (the database is down) stops nothing."""
    try:
        await board.record(name, failed)
    except Exception as exc:
        logger.warning("job %s: the round's outcome could not be shared (%s)", name, where_it_failed(exc))


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


@contextlib.asynccontextmanager
async def running(
    jobs: list[Job],
    health: JobHealth,
    *,
    grace: float = STOP_GRACE_SECONDS,
    leases: Leases | None = None,
    board: Board | None = None,
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run every job until the block ends; then let each finish the round it is in, and cancel what hangs.

    A round cancelled in the middle of a statement leaves its database connection to the garbage collector (on
    SQLite, a lost connection): only a round still running after `grace` seconds is cancelled.
    """
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(run_job(job, health, stopping, leases, board), name=f"job:{job.name}") for job in jobs]
    try:
        yield tasks
    finally:
        stopping.set()
        _, hanging = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
        for task in hanging:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
