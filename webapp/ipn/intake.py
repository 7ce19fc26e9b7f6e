"""Group commit for IPNs, in two stages: receipts are stored while the ones stored before them are judged.

Every request still waits for its own receipt's verdict (Alix Pay hears it as the HTTP status), but under load
the round trips of storing and of judging are paid once per batch instead of once per IPN, and a batch is stored
while the previous one is being judged (docs/PERFORMANCE.md). A lone IPN goes at once: nothing waits for a batch
to fill. Storing and judging stay two steps, so each receipt is committed raw before anything reads it, and
receipts are judged one batch at a time in the order they were stored.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from webapp.alixpay.client import AlixPayClient
from webapp.db import Database
from webapp.ipn.service import BATCH_SIZE, Delivery, IntakeVerdict, Judged, RetryPolicy, process_many, store_raw
from webapp.orders.transitions import StatusChanges

Answer = asyncio.Future[tuple[int, Judged]]
"""What a request waits for: its receipt's id and verdict."""
Item = TypeVar("Item", bound=tuple[Any, Answer])


class IpnIntake:
    """One per app instance: deliveries to store and receipts to judge, each stage worked by at most one task."""

    def __init__(
        self, db: Database, changes: StatusChanges, alixpay: AlixPayClient, retry: RetryPolicy, max_body_bytes: int
    ) -> None:
        self._db = db
        self.max_body_bytes = max_body_bytes
        """Bytes of a body kept and judged; a longer one is stored up to this and refused."""
        self._changes = changes
        self._alixpay = alixpay
        self._retry = retry
        self._storing: Stage[tuple[Delivery, Answer]] = Stage("ipn-store", self._store)
        self._judging: Stage[tuple[int, Answer]] = Stage("ipn-judge", self._judge)

    async def receive(self, delivery: Delivery) -> tuple[int, Judged]:
        """Store the delivery, judge it, and return its receipt's id and verdict (with whatever else is waiting).

        A request that goes away while waiting leaves its receipt to be stored and judged all the same.
        """
        answer: Answer = asyncio.get_running_loop().create_future()
        self._storing.put([(delivery, answer)])
        return await answer

    async def _store(self, batch: list[tuple[Delivery, Answer]]) -> None:
        receipt_ids = await store_raw(self._db, *(delivery for delivery, _ in batch))
        to_judge = []
        for receipt_id, (delivery, answer) in zip(receipt_ids, batch, strict=True):
            if delivery.too_large:
                _give(answer, (receipt_id, Judged(IntakeVerdict.TOO_LARGE)))
            else:
                to_judge.append((receipt_id, answer))
        self._judging.put(to_judge)

    async def _judge(self, batch: list[tuple[int, Answer]]) -> None:
        receipt_ids = [receipt_id for receipt_id, _ in batch]
        judged = await process_many(
            receipt_ids, db=self._db, changes=self._changes, alixpay=self._alixpay, retry=self._retry
        )
        for receipt_id, answer in batch:
            _give(answer, (receipt_id, judged[receipt_id]))


class Stage(Generic[Item]):
    """A queue worked through by at most one task, up to BATCH_SIZE items per step, in the order they were put.

    When a step raises, its items' requests get the error (answered 500; a stored receipt is judged later by the
    replay job); when the task is cancelled (the loop is closing), every item left gets "IPN intake stopped".
    """

    def __init__(self, name: str, step: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._name = name
        self._step = step
        self._items: list[Item] = []
        self._worker: asyncio.Task[None] | None = None

    def put(self, items: list[Item]) -> None:
        self._items += items
        if self._items and self._worker is None:
            # A context of its own: the task outlives the request that starts it and works for others.
            self._worker = asyncio.create_task(self._work(), name=self._name, context=contextvars.Context())

    async def _work(self) -> None:
        batch: list[Item] = []
        try:
            while self._items:
                batch, self._items = self._items[:BATCH_SIZE], self._items[BATCH_SIZE:]
                try:
                    await self._step(batch)
                except Exception as exc:
                    _fail(batch, exc)
                batch = []
        finally:
            self._worker = None
            left, self._items = batch + self._items, []
            _fail(left, RuntimeError("IPN intake stopped"))


def _give(answer: Answer, result: tuple[int, Judged]) -> None:
    if not answer.done():  # else its request went away
        answer.set_result(result)


def _fail(items: list[Item], exc: Exception) -> None:
    for _, answer in items:
        if not answer.done():
            answer.set_exception(exc)
