"""My cash-outs: filters, the search box, keyset pages that hold still while orders arrive, and my history as CSV."""

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import select

from tests.builders import make_order
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, signed_in_client
from webapp.auth.models import User
from webapp.orders.models import Order

NOW = datetime.now(UTC)


async def person_id(db: Db, email: str) -> int:
    async with db.sessionmaker() as session:
        return (await session.exec(select(User.id).where(User.email == email))).one()


async def seed(db: Db, user_id: int, email: str, **overrides: object) -> Order:
    async with db.sessionmaker() as session, session.begin():
        order = make_order(user_id=user_id, email=email, **overrides)
        session.add(order)
    return order


def references(page: str) -> list[str]:
    return re.findall(r'<td data-label="Reference"><a href="/orders/[^"]+"><code>([0-9A-F]{8})</code>', page)


async def mine_and_theirs(live_app: LiveApp, db: Db) -> tuple[httpx.AsyncClient, list[Order], Order]:
    """Twelve orders of mine, an hour apart (the newest first), and one of another person's."""
    me = await signed_in_client(live_app)
    other = await signed_in_client(live_app, "someone.else@example.com")
    mine = [
        await seed(
            db,
            await person_id(db, "user@example.com"),
            "user@example.com",
            created_at=NOW - timedelta(hours=hour),
            status=("SUCCESS", "FAIL", "AWAITING_PAYMENT")[hour % 3],
            recipient_name="TRAN THI BICH" if hour == 4 else "NGUYEN VAN ANH",
            account_number="0071000123456" if hour == 5 else "19030413601018",
            transfer_content="=1+1" if hour == 0 else "RUT TIEN ABCDEFGH",
        )
        for hour in range(12)
    ]
    theirs = await seed(db, await person_id(db, "someone.else@example.com"), "someone.else@example.com")
    await other.aclose()
    return me, mine, theirs


async def test_filters_and_the_search_box_find_only_my_own_cash_outs(live_app: LiveApp, db: Db) -> None:
    me, mine, theirs = await mine_and_theirs(live_app, db)

    async def found(**params: str) -> list[str]:
        return references((await me.get("/orders", params=params)).text)

    failed = [order.reference for order in mine if order.status == "FAIL"]
    assert await found(outcome="failed") == failed
    assert await found(q="trần thị") == [mine[4].reference]  # accents optional, as the bank holds the name
    assert await found(q="123456") == [mine[5].reference]  # account digits
    for order in mine:  # the reference, whatever its letters (`9909231e` once matched every name with an E)
        assert await found(q=order.external_order_id[:8]) == [order.reference]
    assert await found(q=theirs.external_order_id[:8]) == []  # another person's order is never found
    assert await found(outcome="failed", q="nguyen") == [ref for ref in failed if ref != mine[4].reference]
    assert await found(**{"from": "2000-01-01", "to": "2000-01-02"}) == []
    assert len(await found(**{"from": (NOW - timedelta(days=2)).date().isoformat()})) == 10  # the first page
    page = await me.get("/orders", params={"q": "nobody"})
    assert "No cash-out matches." in page.text


async def test_keyset_pages_hold_still_while_an_order_arrives(live_app: LiveApp, db: Db) -> None:
    me, mine, _ = await mine_and_theirs(live_app, db)
    first = await me.get("/orders")
    assert references(first.text) == [order.reference for order in mine[:10]]
    older = html.unescape(re.search(r'<a href="(/orders\?after=[^"]+)" rel="next">', first.text).group(1))
    arrived = await seed(db, mine[0].user_id, "user@example.com")  # a new order lands meanwhile
    second = await me.get(older)
    assert references(second.text) == [order.reference for order in mine[10:]]  # no repeat, none skipped
    assert 'rel="next"' not in second.text
    assert references((await me.get("/orders")).text)[0] == arrived.reference


async def test_my_history_csv_holds_my_orders_only_in_my_language_with_formulas_neutralised(
    live_app: LiveApp, db: Db
) -> None:
    me, mine, theirs = await mine_and_theirs(live_app, db)
    answer = await me.get("/orders/history.csv", params={"lang": "vi"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.text.removeprefix("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Ngày", "Mã tham chiếu", "Trạng thái", "Số tiền (VND)"]
    assert [row[1] for row in body] == [order.reference for order in mine]  # every page, not the first ten
    assert theirs.reference not in answer.text
    assert {row[3] for row in body} == {"100.000"}  # Vietnamese digits grouping
    assert body[0][7] == "'=1+1"  # a spreadsheet shows it, never runs it
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", body[0][0])
    english = await me.get("/orders/history.csv", params={"lang": "en", "outcome": "failed"})
    rows = list(csv.reader(io.StringIO(english.text.removeprefix("\ufeff"))))
    assert rows[0][3] == "Amount (VND)" and {row[3] for row in rows[1:]} == {"100,000"}
    assert {row[2] for row in rows[1:]} == {"Failed"}
