"""Rate-limit counters without a database write per request: counted here, added to the shared count each second.

Which figure it buys (issue 30, docs/PERFORMANCE.md): order creation wrote a counter row on both limited requests
of every order (the review post and the confirm), and an IPN from an address outside `IPN_ALLOWED_SOURCES` one
per notification. Now a limited request costs a dictionary update; each instance adds its hits to the shared
count in one statement a second (`rate-limit-flush`, every instance) and reads a key's shared count at most once
a second.

Windows are the clock's minutes (the limits are per minute), counted per key in `rate_limit_window` with an
atomic add, so instances never overwrite each other. Tolerance, stated: another instance's hits are seen at most
about two seconds late (one flush, one read), so someone spreading requests over N instances can pass a limit by
what they send in those two seconds on the other N-1; an instance killed loses at most its last second of hits.
One instance alone counts exactly.
"""

import time
from collections import Counter

from litestar.serialization import encode_json
from litestar.stores.base import Store
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from webapp.db import autocommit, dialect_insert

WINDOW_SECONDS = 60
FLUSH_SECONDS = 1.0
"""How often each instance adds its hits to the shared counts (`rate-limit-flush`)."""
FRESH_SECONDS = 1.0
"""How long a shared count read from the database is trusted before it is read again."""


class RateLimitWindow(SQLModel, table=True):
    __tablename__ = "rate_limit_window"

    key: str = Field(primary_key=True, max_length=255)
    minute: int = Field(primary_key=True)
    """The minute counted in: seconds since 1970 // 60."""
    count: int


class SharedCounterStore(Store):
    """The store Litestar's rate-limit middleware reads and writes, as one counter per key and minute.

    The middleware asks `get(key)` for the history it keeps (a list with one entry per request in the window and
    the window's end) and `set(key, …)` after letting a request through; the store only counts.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)
        table = RateLimitWindow.__table__  # type: ignore[attr-defined]
        self._read = select(table.c.count).where(table.c.key == bindparam("k"), table.c.minute == bindparam("w"))
        self._table = table
        self._unflushed: Counter[tuple[str, int]] = Counter()
        self._flushing: Counter[tuple[str, int]] = Counter()
        """Hits being written: still counted here until the shared count read includes them."""
        self._shared: dict[str, tuple[int, int, float]] = {}
        """Per key: the window, the shared count read for it (plus what this instance flushed since), when read."""

    @staticmethod
    def _window() -> int:
        return int(time.time()) // WINDOW_SECONDS

    async def count(self, key: str) -> int:
        """This minute's hits on `key`: the shared count (at most a second old) and this instance's unflushed."""
        window = self._window()
        known = self._shared.get(key)
        if known is None or known[0] != window or time.monotonic() - known[2] > FRESH_SECONDS:
            async with self._engine.connect() as connection:
                shared = (await connection.execute(self._read, {"k": key, "w": window})).scalar() or 0
            known = self._shared[key] = (window, shared, time.monotonic())
        return known[1] + self._unflushed[(key, window)] + self._flushing[(key, window)]

    async def get(self, key: str, renew_for: int | None = None) -> bytes | None:
        counted = await self.count(key)
        if not counted:
            return None
        window = self._window()
        end = (window + 1) * WINDOW_SECONDS
        return encode_json({"history": [window * WINDOW_SECONDS] * counted, "reset": end})

    async def set(self, key: str, value: str | bytes, expires_in: int | None = None) -> None:
        """The middleware let one more request through: count it."""
        self._unflushed[(key, self._window())] += 1

    async def flush(self) -> int:
        """The `rate-limit-flush` job: add this instance's hits to the shared counts; returns the keys written."""
        taken, self._unflushed = self._unflushed, Counter()
        if not taken:
            return 0
        self._flushing = taken
        started = time.monotonic()
        rows = [{"key": key, "minute": window, "count": count} for (key, window), count in taken.items()]
        try:
            async with self._engine.connect() as connection:
                upsert = dialect_insert(connection.dialect.name)(self._table)
                added = upsert.on_conflict_do_update(
                    index_elements=["key", "minute"], set_={"count": self._table.c.count + upsert.excluded.count}
                )
                await connection.execute(added, rows)
        except Exception:
            self._unflushed.update(taken)  # counted again at the next round
            raise
        finally:
            self._flushing = Counter()
        for (key, window), count in taken.items():
            known = self._shared.get(key)
            if known is not None and known[0] == window and known[2] < started:  # a read from before the write
                self._shared[key] = (window, known[1] + count, known[2])
        return len(rows)

    async def delete_expired(self) -> int:
        """Windows before the last minute are over: the `rate-limit-cleanup` job removes them."""
        older = delete(self._table).where(self._table.c.minute < self._window() - 1)
        async with self._engine.connect() as connection:
            removed = int((await connection.execute(older)).rowcount or 0)
        self._shared = {key: known for key, known in self._shared.items() if known[0] >= self._window() - 1}
        return removed

    async def delete(self, key: str) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(delete(self._table).where(self._table.c.key == key))
        self._shared.pop(key, None)

    async def delete_all(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(delete(self._table))
        self._shared.clear()
        self._unflushed.clear()

    async def exists(self, key: str) -> bool:
        return await self.count(key) > 0

    async def expires_in(self, key: str) -> int | None:
        return (self._window() + 1) * WINDOW_SECONDS - int(time.time())
