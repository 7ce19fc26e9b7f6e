"""Helpers for tests of several app processes (the `cluster` fixture of conftest.py): a person signed in on one,
the next status a stream shows."""

import asyncio
from collections.abc import AsyncIterator

import httpx

from tests.integration.conftest import LiveApp
from tests.integration.flow import signed_in_client
from webapp.config import Settings


async def signed_in(url: str, settings: Settings, email: str = "user@example.com") -> httpx.AsyncClient:
    app = LiveApp(url, settings, sandbox=None)  # type: ignore[arg-type]
    return await signed_in_client(app, email)


async def next_status(stream: AsyncIterator[str], needle: str, timeout: float = 15) -> str:
    async def read() -> str:
        async for line in stream:
            if line.startswith("data:") and needle in line:
                return line
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)
