"""Background jobs, each its own task with its own interval and error handling.

A job that raises or hangs holds up no other: receipt replay, reconciliation, clean-up and the alarms run side by
side. A failing job waits longer between rounds (its interval, doubled per failure in a row, at most 32 times),
so a database that is down today is tried again tomorrow without flooding the log. Start-up never depends on a
job. `JobHealth` remembers how each job's rounds went, for the operations page and the alarms.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from webapp.metrics import JOB_FAILURES, JOB_ROUNDS, JOB_SECONDS

logger = logging.getLogger(__name__)
MAX_BACKOFF_FACTOR = 32


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[int]]
    """One round; returns how many items it handled (receipts, orders, rows)."""


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


async def run_job(job: Job, health: JobHealth) -> None:
    JOB_FAILURES.labels(job.name)  # exported from the start, at 0
    while True:
        started = time.perf_counter()
        JOB_ROUNDS.labels(job.name).inc()
        try:
            handled = await job.run()
        except Exception as exc:
            JOB_FAILURES.labels(job.name).inc()
            state = health.record(job.name, exc)
            logger.exception(
                "job %s: round failed after %.3f s (%d in a row)",
                job.name,
                time.perf_counter() - started,
                state.failures_in_a_row,
            )
        else:
            state = health.record(job.name, None)
            logger.log(
                logging.INFO if handled else logging.DEBUG,
                "job %s: %d handled in %.3f s",
                job.name,
                handled,
                time.perf_counter() - started,
            )
        JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        await asyncio.sleep(job.interval * min(2**state.failures_in_a_row, MAX_BACKOFF_FACTOR))


@contextlib.asynccontextmanager
async def running(jobs: list[Job], health: JobHealth) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run every job until the block ends, then cancel them all."""
    tasks = [asyncio.create_task(run_job(job, health), name=f"job:{job.name}") for job in jobs]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
