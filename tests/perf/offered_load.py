"""An open-loop load: requests sent at a fixed rate, whatever the server's answers, as Alix Pay's deliveries come.

`wrk` (the IPN benchmark's driver) is closed-loop: each connection sends its next request once its last is answered,
so the rate it measures is the server's answers per latency, and a server that batches sees the connections come
back in cohorts. Here request `i` is due at `start + i / rate`; it goes out on an idle keep-alive connection (one
more is opened when none is idle, up to `max_connections`), and its latency counts from when it was due, so a server
falling behind shows as latency rather than as a lower offered rate. Raw HTTP/1.1 over asyncio protocols, to spend
as little of the shared cores as a Python client can.
"""

import asyncio
import statistics
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Offered:
    """What one offered rate gave: answers in time, the latencies from when each request was due."""

    rate: float
    sent: int
    answered: int
    late: int
    """Requests that found no connection free within `max_connections`: the server holds that many already."""
    failed: int
    """Answers other than 2xx."""
    seconds: float
    p50: float
    p99: float

    @property
    def answered_rate(self) -> float:
        return self.answered / self.seconds


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer read by its Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._answer: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError("connection lost"))

    def send(self, request: bytes) -> "asyncio.Future[int]":
        self._answer = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self._buffer[:head_end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
        if len(self._buffer) < head_end + 4 + length:
            return
        status = int(head.split(" ", 2)[1])
        self._buffer = self._buffer[head_end + 4 + length :]
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(status)


def post_request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def offer(host: str, port: int, requests: list[bytes], rate: float, *, max_connections: int = 256) -> Offered:
    """Send `requests` (whole HTTP requests) at `rate` per second; what came back, and when."""
    loop = asyncio.get_running_loop()
    idle: deque[_Connection] = deque()
    opened: list[_Connection] = []
    opening = 0
    latencies: list[float] = []
    failed = late = 0
    pending: set[asyncio.Task[None]] = set()

    async def connection() -> _Connection | None:
        nonlocal opening
        while idle:
            found = idle.pop()
            if not found.lost:
                return found
        if len(opened) + opening >= max_connections:
            return None
        opening += 1
        try:
            _, made = await loop.create_connection(_Connection, host, port)
        finally:
            opening -= 1
        opened.append(made)
        return made

    async def one(request: bytes, due: float) -> None:
        nonlocal failed, late
        made = await connection()
        if made is None:
            late += 1
            return
        try:
            status = await made.send(request)
        except ConnectionError:
            failed += 1
            return
        latencies.append((time.perf_counter() - due) * 1000)
        if not 200 <= status < 300:
            failed += 1
        idle.append(made)

    start = time.perf_counter() + 0.05
    for index, request in enumerate(requests):
        due = start + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = loop.create_task(one(request, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=10)
    seconds = time.perf_counter() - start
    for made in opened:  # also those whose answer never came
        if made.transport is not None:
            made.transport.close()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Offered(rate, len(requests), len(latencies), late, failed, seconds, cuts[49], cuts[98])
