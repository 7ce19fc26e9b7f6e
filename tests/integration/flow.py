"""The cash-out flow as a person drives it over real HTTP, and the app's database as support would read it."""

import re

import httpx
from sqlmodel import col, select

from tests.integration.conftest import LiveApp
from tests.processes import async_wait_for
from webapp.db import make_engine, make_sessionmaker
from webapp.ipn.models import IpnReceipt
from webapp.orders.models import Order, OrderEvent, OrderTransition

HAPPY = ["AWAITING_PAYMENT", "PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS"]
FORM = {
    "bank": "970407",
    "account_number": "1903 0413 6010 18",
    "recipient_name": "Nguyễn Văn Ánh",
    "amount": "100.000",
}


async def signed_in_client(app: LiveApp, email: str = "user@example.com", lang: str = "en") -> httpx.AsyncClient:
    client = app.client()
    client.headers["accept-language"] = lang
    start = await client.get("/login", follow_redirects=False)
    chosen = httpx.post(start.headers["location"], data={"sub": email}, follow_redirects=False)
    callback = chosen.headers["location"].removeprefix(app.url)
    done = await client.get(callback, follow_redirects=False)
    assert done.status_code in (302, 303), done.text
    return client


async def review(client: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    await client.get("/orders/new")
    data = {**FORM, **overrides, "_csrf_token": client.cookies["csrftoken"]}
    return await client.post("/orders/review", data=data, follow_redirects=True)  # to GET /orders/review


async def confirm(client: httpx.AsyncClient, review_page: httpx.Response, *, untick: bool = False) -> httpx.Response:
    """Confirm as a browser would: the "Save this recipient" box sent as the page has it, unless `untick`."""
    submission_id = re.search(r'name="submission_id" value="([^"]+)"', review_page.text).group(1)
    data = {"submission_id": submission_id, "_csrf_token": client.cookies["csrftoken"]}
    if 'name="save_recipient" value="1" checked' in review_page.text and not untick:
        data["save_recipient"] = "1"
    return await client.post("/orders", data=data, follow_redirects=False)


async def place_order(client: httpx.AsyncClient, **overrides: str) -> str:
    page = await review(client, **overrides)
    assert page.status_code == 200, page.text
    placed = await confirm(client, page)
    assert placed.status_code == 303, placed.text
    return placed.headers["location"].rsplit("/", 1)[1]


class Db:
    """Reads the app's database the way support would, to check what was stored."""

    def __init__(self, app: LiveApp) -> None:
        self.engine = make_engine(app.settings.database.url)
        self.sessionmaker = make_sessionmaker(self.engine)

    async def order(self, external_order_id: str) -> Order:
        async with self.sessionmaker() as session:
            return (await session.exec(select(Order).where(Order.external_order_id == external_order_id))).one()

    async def transitions(self, order: Order) -> list[tuple[str, str, str]]:
        async with self.sessionmaker() as session:
            rows = (
                await session.exec(
                    select(OrderTransition)
                    .where(OrderTransition.order_id == order.id)
                    .order_by(col(OrderTransition.id))
                )
            ).all()
        return [(row.from_status, row.to_status, row.source) for row in rows]

    async def receipts(self, external_order_id: str) -> list[IpnReceipt]:
        async with self.sessionmaker() as session:
            return list(
                (
                    await session.exec(
                        select(IpnReceipt)
                        .where(IpnReceipt.external_order_id == external_order_id)
                        .order_by(col(IpnReceipt.id))
                    )
                ).all()
            )

    async def all_receipts(self) -> list[IpnReceipt]:
        async with self.sessionmaker() as session:
            return list((await session.exec(select(IpnReceipt))).all())

    async def events(self, order: Order) -> list[OrderEvent]:
        async with self.sessionmaker() as session:
            query = select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(col(OrderEvent.id))
            return list((await session.exec(query)).all())

    async def final(self, external_order_id: str, status: str, timeout: float = 30) -> Order:
        async def reached() -> Order | None:
            order = await self.order(external_order_id)
            return order if order.status == status else None

        return await async_wait_for(reached, timeout=timeout, what=f"{external_order_id} to reach {status}")

    async def close(self) -> None:
        await self.engine.dispose()
