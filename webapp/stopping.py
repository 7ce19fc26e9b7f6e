"""What an instance does the moment it is asked to stop, before the server's own graceful shutdown.

uvicorn, on SIGTERM, stops accepting connections and then waits (up to `serve --graceful-timeout`) for open
responses to finish. A live stream never finishes by itself, so it is told first: it ends with a short retry
hint, and the page's EventSource reconnects through the proxy to another instance (docs/deploy.md).
"""

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def when_asked_to_stop(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` in the event loop on SIGTERM or SIGINT, then the handler the server had installed.

    Only under a server that handles those signals itself (a callable handler): elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    servers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def stopping(sig: int, frame: object) -> None:
        loop.call_soon_threadsafe(callback)
        servers[sig](sig, frame)  # type: ignore[operator]

    ours = [sig for sig, handler in servers.items() if callable(handler)]
    for sig in ours:
        signal.signal(sig, stopping)
    try:
        yield
    finally:
        for sig in ours:
            if signal.getsignal(sig) is stopping:
                signal.signal(sig, servers[sig])
