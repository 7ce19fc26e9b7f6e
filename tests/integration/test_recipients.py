"""Saved recipients and "cash out again": the second cash-out is the easy one, and only ever the person's own."""

import re

import httpx
from sqlmodel import select

from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, confirm, place_order, review, signed_in_client
from webapp.orders.recipients import SavedRecipient

REFUSED_ACCOUNT = "1903 0413 6000 00"
"""The sandbox's bank refuses an account ending 0000: the order ends FAIL."""


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def kept(db: Db) -> list[SavedRecipient]:
    async with db.sessionmaker() as session:
        return list((await session.exec(select(SavedRecipient).order_by(SavedRecipient.id))).all())


def form_values(page: str) -> dict[str, str]:
    """What the new cash-out form shows filled in."""
    values = {
        name: re.search(rf'id="{name}"[^>]*?value="([^"]*)"', page, re.S).group(1)
        for name in ("account_number", "recipient_name", "amount")
    }
    selected = re.search(r'<option value="(\d+)"[^>]*selected', page)
    return {**values, "bank": selected.group(1) if selected else ""}


async def test_a_paid_out_cash_out_keeps_its_recipient_once_and_a_failed_or_unticked_one_keeps_nothing(
    live_app: LiveApp, db: Db
) -> None:
    client = await signed_in_client(live_app)
    first = await place_order(client)
    await db.final(first, "SUCCESS")
    (saved,) = await kept(db)
    assert (saved.bank_bin, saved.account_number, saved.recipient_name) == (
        "970407",
        "19030413601018",
        "NGUYEN VAN ANH",
    )
    second = await place_order(client)  # the same account again: refreshed, no twin
    await db.final(second, "SUCCESS")
    (again,) = await kept(db)
    assert again.id == saved.id and again.last_used_at > saved.last_used_at

    unticked = await confirm(client, await review(client, account_number="0071 0001 2345 6"), untick=True)
    await db.final(unticked.headers["location"].rsplit("/", 1)[1], "SUCCESS")
    failed = await place_order(client, account_number=REFUSED_ACCOUNT)
    await db.final(failed, "FAIL")
    assert [row.account_number for row in await kept(db)] == ["19030413601018"]


async def test_one_click_fills_the_form_then_review_and_confirm_place_the_order(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    await db.final(await place_order(client, amount="250.000"), "SUCCESS")
    (saved,) = await kept(db)
    new = await client.get("/orders/new")
    assert f'href="/orders/new?recipient={saved.id}"' in new.text and "••••1018" in new.text
    filled = await client.get("/orders/new", params={"recipient": saved.id})
    values = form_values(filled.text)
    assert values == {
        "bank": "970407",
        "account_number": "19030413601018",
        "recipient_name": "NGUYEN VAN ANH",
        "amount": "",
    }
    placed = await confirm(client, await review(client, **{**values, "amount": "120.000"}))
    order = await db.order(placed.headers["location"].rsplit("/", 1)[1])
    assert (order.account_number, order.recipient_name, order.fiat_amount) == (
        "19030413601018",
        "NGUYEN VAN ANH",
        120000,
    )


async def test_cash_out_again_fills_the_payee_and_the_amount_of_the_persons_own_order(live_app: LiveApp) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client, amount="333.000")
    page = await client.get(f"/orders/{order_id}")
    assert f'href="/orders/new?again={order_id}"' in page.text
    values = form_values((await client.get("/orders/new", params={"again": order_id})).text)
    assert values == {
        "bank": "970407",
        "account_number": "19030413601018",
        "recipient_name": "NGUYEN VAN ANH",
        "amount": "333000",
    }
    stranger = await signed_in_client(live_app, "someone.else@example.com")
    theirs = form_values((await stranger.get("/orders/new", params={"again": order_id})).text)
    assert theirs["account_number"] == "" and theirs["amount"] == ""  # another person's order fills nothing


async def test_recipients_are_renamed_and_deleted_by_their_owner_only_and_orders_stay(
    live_app: LiveApp, db: Db
) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    await db.final(order_id, "SUCCESS")
    (saved,) = await kept(db)
    stranger = await signed_in_client(live_app, "someone.else@example.com")
    assert "Pay someone again" not in (await stranger.get("/orders/new")).text
    assert form_values((await stranger.get("/orders/new", params={"recipient": saved.id})).text)["account_number"] == ""
    assert "••••1018" not in (await stranger.get("/account/recipients")).text
    hijack = await stranger.post(
        f"/account/recipients/{saved.id}/label", data={"label": "Mine"}, headers=csrf(stranger)
    )
    assert hijack.status_code == 404
    assert (await stranger.post(f"/account/recipients/{saved.id}/delete", headers=csrf(stranger))).status_code == 404

    renamed = await client.post(
        f"/account/recipients/{saved.id}/label", data={"label": "  Mum  "}, headers=csrf(client), follow_redirects=True
    )
    assert renamed.status_code == 200 and "The name is saved." in renamed.text
    assert "<strong>Mum</strong>" in (await client.get("/orders/new")).text
    deleted = await client.post(f"/account/recipients/{saved.id}/delete", headers=csrf(client), follow_redirects=True)
    assert "The recipient is deleted." in deleted.text and await kept(db) == []
    assert (await client.get(f"/orders/{order_id}")).status_code == 200  # the order is untouched
    assert (await db.order(order_id)).account_number == "19030413601018"
