"""Live order updates through Litestar's channels plugin: a memory backend here, PostgreSQL when scaled out.

Only a signal crosses the channel; each subscriber renders the fragment itself, in its own language.
"""

import contextlib

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend


def make_channels() -> ChannelsPlugin:
    return ChannelsPlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True)


def order_channel(order_id: int) -> str:
    return f"order:{order_id}"


def publish_change(channels: ChannelsPlugin, order_id: int) -> None:
    with contextlib.suppress(RuntimeError):  # not started yet (receipts replayed at start-up): nobody listens
        channels.publish({"order": order_id}, [order_channel(order_id)])
