"""Rate limits: counted per clock minute, shared by every instance through the database, per door, a clear 429."""

import asyncio

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import create_schema
from webapp.app import create_app
from webapp.config import Settings
from webapp.ratelimit_store import FLUSH_SECONDS, FRESH_SECONDS

pytestmark = pytest.mark.usefixtures("not_at_the_end_of_a_minute")


async def app_with(settings: Settings, **limits: object) -> Litestar:
    await create_schema(settings.database.url)
    return create_app(settings.model_copy(update=limits))


async def test_sign_in_is_limited_per_address_with_a_localised_429(settings: Settings) -> None:
    app = await app_with(settings, rate_limit_sign_in=3)
    async with AsyncTestClient(app=app) as client:
        answers = [await client.get("/login", follow_redirects=False) for _ in range(3)]
        assert all(answer.status_code != 429 for answer in answers)
        refused = await client.get("/login", headers={"accept-language": "vi"}, follow_redirects=False)
        assert refused.status_code == 429
        assert "Quá nhiều yêu cầu" in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another door keeps its own count.
        assert (await client.post("/ipn/alixpay", content=b"{}")).status_code == 400


async def test_ipns_are_limited_per_source_except_from_alix_pays_addresses(settings: Settings) -> None:
    app = await app_with(settings, rate_limit_ipn=2)
    async with AsyncTestClient(app=app) as client:
        statuses = [(await client.post("/ipn/alixpay", content=b"{}")).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    allowed = await app_with(settings, rate_limit_ipn=2, ipn_allowed_sources=["testclient"])
    async with AsyncTestClient(app=allowed) as client:
        statuses = [(await client.post("/ipn/alixpay", content=b"{}")).status_code for _ in range(5)]
    assert statuses == [400] * 5  # malformed, but never limited: Alix Pay's retries always get through


async def test_two_instances_share_one_count_within_the_stated_two_seconds(settings: Settings) -> None:
    first, second = (
        await app_with(settings, rate_limit_ipn=3),
        create_app(settings.model_copy(update={"rate_limit_ipn": 3})),
    )
    async with AsyncTestClient(app=first) as one, AsyncTestClient(app=second) as other:
        assert (await other.post("/ipn/alixpay", content=b"{}")).status_code == 400  # the other has read the count
        assert (await one.post("/ipn/alixpay", content=b"{}")).status_code == 400
        assert (await one.post("/ipn/alixpay", content=b"{}")).status_code == 400
        await asyncio.sleep(FLUSH_SECONDS + FRESH_SECONDS + 0.2)  # one's hits flushed, the other's reading renewed
        assert (await other.post("/ipn/alixpay", content=b"{}")).status_code == 429
