"""The baseline of the live fan-out benchmark: the least a live page can do on the same framework, server and
cross-instance channel (Litestar's channels plugin on PostgreSQL LISTEN/NOTIFY): an SSE stream per watcher that
sends a fixed fragment now and after every signal, and a POST that signals. No session, no database read, no
rendering. `uvicorn --factory tests.perf.bare_fanout:create_app`. The fragment is a one-line paragraph, or with
`BARE_FRAGMENT_FILE` that file's text: the bytes our order page sends, so both put the same on the wire."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Litestar, get, post
from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEvent, ServerSentEventMessage

from webapp.orders.live import PatientPgChannelsBackend

FRAGMENT = '<section id="order-status" aria-live="polite"><p>{}</p></section>'


def create_app() -> Litestar:
    given = os.environ.get("BARE_FRAGMENT_FILE")
    text = Path(given).read_text() if given else None

    def fragment(value: str) -> str:
        return FRAGMENT.format(value) if text is None else text

    channels = ChannelsPlugin(
        backend=PatientPgChannelsBackend(dsn=os.environ["BARE_DSN"]), arbitrary_channels_allowed=True
    )

    @get("/events/{key:str}")
    async def events(key: str) -> ServerSentEvent:
        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            async with channels.start_subscription([f"order:{key}"]) as subscriber:
                yield ServerSentEventMessage(data=fragment("0"), event="status")
                async for message in subscriber.iter_events():
                    yield ServerSentEventMessage(data=fragment(message.decode()), event="status")

        return ServerSentEvent(stream())

    @post("/publish/{key:str}", status_code=200)
    async def publish(key: str) -> dict[str, str]:
        channels.publish(key, [f"order:{key}"])
        return {"verdict": "applied"}

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[events, publish, healthz], plugins=[channels])
