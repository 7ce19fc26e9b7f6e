"""A stage of the IPN intake: batches in the order put; a failing step fails its own items, a stop the rest."""

import asyncio

import pytest

from webapp.ipn.intake import Answer, Stage
from webapp.ipn.service import BATCH_SIZE, Judged
from webapp.orders.state import Verdict


def answers(count: int) -> list[tuple[int, Answer]]:
    loop = asyncio.get_running_loop()
    return [(number, loop.create_future()) for number in range(count)]


async def test_items_go_in_the_order_put_at_most_a_batch_per_step_and_a_failing_step_fails_only_its_own() -> None:
    steps: list[list[int]] = []

    async def step(batch: list[tuple[int, Answer]]) -> None:
        steps.append([number for number, _ in batch])
        if len(steps) == 1:
            raise RuntimeError("the first step broke")
        for number, answer in batch:
            answer.set_result((number, Judged(Verdict.APPLIED)))

    items = answers(BATCH_SIZE + 3)
    stage: Stage[tuple[int, Answer]] = Stage("test", step)
    stage.put(items[: BATCH_SIZE + 1])
    stage.put(items[BATCH_SIZE + 1 :])
    results = await asyncio.gather(*(answer for _, answer in items), return_exceptions=True)
    assert steps == [list(range(BATCH_SIZE)), [BATCH_SIZE, BATCH_SIZE + 1, BATCH_SIZE + 2]]
    assert all(isinstance(result, RuntimeError) for result in results[:BATCH_SIZE])
    assert results[BATCH_SIZE:] == [(number, Judged(Verdict.APPLIED)) for number in range(BATCH_SIZE, BATCH_SIZE + 3)]


async def test_a_stopped_stage_fails_the_step_under_way_and_everything_left() -> None:
    started = asyncio.Event()

    async def step(_batch: list[tuple[int, Answer]]) -> None:
        started.set()
        await asyncio.Event().wait()  # never ends by itself

    items = answers(BATCH_SIZE * 2)
    stage: Stage[tuple[int, Answer]] = Stage("test", step)
    stage.put(items)
    await started.wait()
    worker = next(task for task in asyncio.all_tasks() if task.get_name() == "test")
    worker.cancel()
    for _, answer in items:
        with pytest.raises(RuntimeError, match="IPN intake stopped"):
            await answer
    stage.put([])  # nothing to do: no worker is started for nothing
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "test" and not task.done()]
