"""Background jobs, each its own task with its own interval and error handling.

A job that raises or hangs holds up no other: receipt replay, reconciliation and clean-up run side by side.
A failing job waits longer between rounds (its interval, doubled per failure in a row, at most 32 times), so a
database that is down today is tried again tomorrow without flooding the log. Start-up never depends on a job.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)
MAX_BACKOFF_FACTOR = 32


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[int]]
    """One round; returns how many items it handled (receipts, orders, rows)."""


async def run_job(job: Job) -> None:
    failures = 0
    while True:
        started = time.perf_counter()
        try:
            handled = await job.run()
        except Exception:
            failures += 1
            logger.exception(
                "job %s: round failed after %.3f s (%d in a row)", job.name, time.perf_counter() - started, failures
            )
        else:
            failures = 0
            logger.log(
                logging.INFO if handled else logging.DEBUG,
                "job %s: %d handled in %.3f s",
                job.name,
                handled,
                time.perf_counter() - started,
            )
        await asyncio.sleep(job.interval * min(2**failures, MAX_BACKOFF_FACTOR))


@contextlib.asynccontextmanager
async def running(jobs: list[Job]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run every job until the block ends, then cancel them all."""
    tasks = [asyncio.create_task(run_job(job), name=f"job:{job.name}") for job in jobs]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
