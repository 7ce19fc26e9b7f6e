"""Test helpers: a real IPN receiver on loopback, a sandbox server process, waiting without fixed sleeps."""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from webapp.dev.stack import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class ReceivedIpn:
    at: float
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class IpnReceiver:
    """A plain HTTP server that records every POST and answers with the next scripted status (200 when none)."""

    url: str = ""
    received: list[ReceivedIpn] = field(default_factory=list)
    scripted: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, external_order_id: str, statuses: list[int]) -> None:
        with self.lock:
            self.scripted[external_order_id] = list(statuses)

    def for_order(self, external_order_id: str) -> list[ReceivedIpn]:
        with self.lock:
            return [ipn for ipn in self.received if ipn.json.get("externalOrderId") == external_order_id]

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            self.received.append(ReceivedIpn(time.monotonic(), body, headers))
            try:
                order_id = json.loads(body).get("externalOrderId", "")
            except ValueError:
                return 400
            queue = self.scripted.get(order_id)
            return queue.pop(0) if queue else 200


@contextlib.contextmanager
def running_receiver() -> Iterator[IpnReceiver]:
    receiver = IpnReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = receiver._answer(body, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    receiver.url = f"http://{LOOPBACK}:{server.server_address[1]}/ipn/alixpay"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SandboxServer:
    url: str
    log_file: Path
    process: subprocess.Popen[bytes]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults: Any) -> None:
        self.admin("PUT", "/admin/faults", json=faults)

    def order(self, external_order_id: str) -> dict[str, Any]:
        return self.admin("GET", f"/admin/orders/{external_order_id}")

    def wait_for_status(self, external_order_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(
            lambda: (report := self.order(external_order_id))["status"] == status and report,
            timeout=timeout,
            what=f"{external_order_id} to reach {status}",
        )


def served_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the app serves on: uvloop when it is installed, as uvicorn chooses (for `asyncio.Runner`)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def cpu_seconds(pid: int) -> float:
    """CPU time a process's threads alive now have used so far, to the nanosecond (/proc's schedstat; its `stat`
    counts in ticks of 10 ms, a tenth of a millisecond per update over the live fan-out's hundred)."""
    total = 0
    for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
            total += int(schedstat.read_text().split()[0])
    return total / 1e9


def postgres_cpu() -> dict[int, float]:
    """CPU time each PostgreSQL server process on this machine has used so far, by process id."""
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.with_name("comm").read_text().strip() == "postgres":
                used[int(stat.parent.name)] = cpu_seconds(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
    return used


def postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds PostgreSQL's processes used since `before` (`postgres_cpu()`): one that ended meanwhile counts
    nothing (its last moments are lost), one that started counts whole, so the figure is never negative."""
    return sum(used - before.get(pid, 0.0) for pid, used in postgres_cpu().items())


@contextlib.contextmanager
def running_process(
    args: list[str], *, env: dict[str, str], log_file: Path, ready_url: str, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process logging to `log_file`, yielded once `ready_url` answers 200, terminated afterwards."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            assert process.poll() is None, log_file.read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(ready_url, timeout=1).status_code == 200
            return False

        wait_for(ready, timeout=30, what=f"{what} to start")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextlib.contextmanager
def running_sandbox(env: dict[str, str], log_file: Path) -> Iterator[SandboxServer]:
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    with running_process(
        [sys.executable, "-m", "webapp", "sandbox"],
        env={**env, "SANDBOX_HOST": LOOPBACK, "SANDBOX_PORT": str(port)},
        log_file=log_file,
        ready_url=f"{url}/healthz",
        what="the sandbox",
    ) as process:
        yield SandboxServer(url, log_file, process)


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> Any:
    """Serve an ASGI app with uvicorn on loopback inside the running event loop (a real HTTP server)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the app server stopped while starting"
            await asyncio.sleep(0.02)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task


async def async_wait_for(probe: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class MailboxServer:
    """The development mailbox (`python -m webapp mailbox`) as a process: a real SMTP sink and its JSON list."""

    url: str
    smtp_url: str

    def messages(self, to: str) -> list[dict[str, Any]]:
        """Mails received for `to`, oldest first."""
        listed = httpx.get(f"{self.url}/api/messages", timeout=5).json()
        return [mail for mail in reversed(listed) if mail["to"] == to]

    def refuse(self, count: int) -> None:
        httpx.post(f"{self.url}/admin/refuse", json={"count": count}, timeout=5).raise_for_status()


@contextlib.contextmanager
def running_mailbox(directory: Path, log_file: Path) -> Iterator[MailboxServer]:
    http_port, smtp_port = free_port(), free_port()
    url = f"http://{LOOPBACK}:{http_port}"
    env = {
        "MAILBOX_HOST": LOOPBACK,
        "MAILBOX_HTTP_PORT": str(http_port),
        "MAILBOX_SMTP_PORT": str(smtp_port),
        "MAILBOX_DIRECTORY": str(directory),
    }
    with running_process(
        [sys.executable, "-m", "webapp", "mailbox"],
        env=env,
        log_file=log_file,
        ready_url=f"{url}/healthz",
        what="mailbox",
    ):
        yield MailboxServer(url, f"smtp://{LOOPBACK}:{smtp_port}")
