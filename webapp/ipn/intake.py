"""Group commit for IPNs: what arrives while a batch is being judged is stored and judged together next.

Every request still waits for its own receipt's verdict (Alix Pay hears it as the HTTP status), but under load
the round trips of storing and judging are paid once per batch instead of once per IPN (docs/PERFORMANCE.md). A
lone IPN goes at once: nothing waits for a batch to fill. Storing and judging stay two steps, so each receipt is
committed raw before anything reads it.
"""

import asyncio
import contextvars

from webapp.alixpay.client import AlixPayClient
from webapp.ipn.service import BATCH_SIZE, Delivery, IpnVerdict, Judged, RetryPolicy, process_many, store_raw
from webapp.orders.transitions import StatusChanges


class IpnIntake:
    """One per app instance: a queue of deliveries and at most one task storing and judging them, batch by batch."""

    def __init__(self, changes: StatusChanges, alixpay: AlixPayClient, retry: RetryPolicy, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        """Bytes of a body kept and judged; a longer one is stored up to this and refused."""
        self._changes = changes
        self._alixpay = alixpay
        self._retry = retry
        self._waiting: list[tuple[Delivery, asyncio.Future[tuple[int, Judged]]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def receive(self, delivery: Delivery) -> tuple[int, Judged]:
        """Store the delivery, judge it, and return its receipt's id and verdict (with whatever else is waiting).

        A request that goes away while waiting leaves its receipt to be stored and judged all the same.
        """
        judged: asyncio.Future[tuple[int, Judged]] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, judged))
        if self._worker is None:
            # A context of its own: the task outlives the request that starts it and works for others.
            self._worker = asyncio.create_task(self._work(), name="ipn-intake", context=contextvars.Context())
        return await judged

    async def _work(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH_SIZE], self._waiting[BATCH_SIZE:]
                try:
                    answers = await self._ingest([delivery for delivery, _ in batch])
                except Exception as exc:  # the requests answer 500; stored receipts are judged by the replay job
                    _fail(batch, exc)
                    continue
                for (_, waiter), answer in zip(batch, answers, strict=True):
                    if not waiter.done():  # else its request went away
                        waiter.set_result(answer)
        except BaseException:  # cancelled: the loop is closing
            _fail(batch, RuntimeError("IPN intake stopped"))
            raise
        finally:
            self._worker = None
            _fail(self._waiting, RuntimeError("IPN intake stopped"))
            self._waiting = []

    async def _ingest(self, deliveries: list[Delivery]) -> list[tuple[int, Judged]]:
        stored = list(zip(await store_raw(self._changes, *deliveries), deliveries, strict=True))
        to_judge = [receipt_id for receipt_id, delivery in stored if not delivery.too_large]
        judged = (
            await process_many(to_judge, changes=self._changes, alixpay=self._alixpay, retry=self._retry)
            if to_judge
            else {}
        )
        return [
            (receipt_id, Judged(IpnVerdict.TOO_LARGE) if delivery.too_large else judged[receipt_id])
            for receipt_id, delivery in stored
        ]


def _fail(waiting: list[tuple[Delivery, "asyncio.Future[tuple[int, Judged]]"]], exc: Exception) -> None:
    for _, waiter in waiting:
        if not waiter.done():
            waiter.set_exception(exc)
