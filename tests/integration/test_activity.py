"""The activity charts: counts kept as statuses change, summed by hour and day of the console's zone, drawn."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlmodel import select

from tests.builders import PARTNER_SECRETS, make_order
from tests.conftest import create_schema
from tests.integration.conftest import LiveApp, both_databases
from tests.integration.flow import signed_in_client
from webapp.activity.charts import charts
from webapp.activity.counts import ActivityCount, changes_counted, hour_of, recount, roll_up
from webapp.activity.figures import DAY, HOUR, Window, activity, quantile
from webapp.auth.models import User
from webapp.db import Database, make_engine, make_sessionmaker
from webapp.embed.models import WebhookAttempt, WebhookEvent
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.ipn.service import reported_after
from webapp.orders.events import StatusChanged
from webapp.orders.live import make_channels
from webapp.orders.statuses import OrderStatus, Outcome
from webapp.services import live_publisher, status_changes

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)  # 17:30 in Vietnam
PLACED = datetime(2026, 12, 5, 9, 59, 30, tzinfo=UTC)
HOUR_PLACED, HOUR_PAID = datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 10, tzinfo=UTC)


def test_a_window_cuts_at_the_readers_midnight_and_full_hours() -> None:
    days, hours = Window(DAY, 30, VIETNAM, NOW), Window(HOUR, 24, VIETNAM, NOW)
    assert days.start(29) == datetime(2026, 12, 5, tzinfo=VIETNAM)  # today began at midnight in Vietnam
    assert days.since == datetime(2026, 11, 5, 17, tzinfo=UTC)  # 30 Vietnamese days back, in UTC
    assert hours.start(23) == datetime(2026, 12, 5, 17, tzinfo=VIETNAM) and hours.start(0).hour == 18


def test_quantiles_are_interpolated_inside_their_bucket_as_prometheus_does() -> None:
    counts = [0] * 15
    counts[3] = 4  # four payouts between 60 and 120 seconds
    assert quantile(counts, 0.5) == 90
    assert quantile([0] * 15, 0.5) is None
    counts[14] = 100  # a hundred beyond the last bound: the last bound is all that can be said
    assert quantile(counts, 0.95) == 259200


def counted(
    previous: str, status: str, source: str = "poll", reported_after: timedelta | None = None
) -> list[tuple[datetime, str, int]]:
    order = make_order(user_id=1, email="a@example.com", status=previous, created_at=PLACED)
    change = StatusChanged(order, previous, status, source, reported_after)
    return changes_counted(change, PLACED + timedelta(seconds=90))


def test_each_status_change_adds_what_it_changes_to_the_counts() -> None:
    pending, succeeded, failed = "placed:pending", "placed:succeeded", "placed:failed"
    paid = (HOUR_PAID, "payout:3", 1)  # 90 s after placing: the 60 to 120 s slot, in the hour it was paid
    assert counted("CREATING", "AWAITING_PAYMENT") == [(HOUR_PLACED, pending, 1)]
    assert counted("CREATING", "REJECTED") == [(HOUR_PLACED, failed, 1)]
    assert counted("AWAITING_PAYMENT", "PAYMENT_COMPLETED") == [paid]
    assert counted("AWAITING_PAYMENT", "PROCESSING_TOKEN_TRANSFER") == [paid]
    assert counted("PAYMENT_COMPLETED", "SUCCESS") == [(HOUR_PLACED, pending, -1), (HOUR_PLACED, succeeded, 1)]
    assert counted("AWAITING_PAYMENT", "SUCCESS") == [(HOUR_PLACED, pending, -1), (HOUR_PLACED, succeeded, 1), paid]
    assert counted("AWAITING_PAYMENT", "FAIL") == [(HOUR_PLACED, pending, -1), (HOUR_PLACED, failed, 1)]


def test_an_ipn_that_changes_a_status_counts_its_delay_or_that_it_gave_none() -> None:
    assert counted("AWAITING_PAYMENT", "FAIL", "ipn", timedelta(seconds=2.4))[-1] == (HOUR_PAID, "ipn:2", 1)
    assert counted("AWAITING_PAYMENT", "FAIL", "ipn", timedelta(0))[-1] == (HOUR_PAID, "ipn:0", 1)
    assert counted("AWAITING_PAYMENT", "FAIL", "ipn", timedelta(days=3))[-1] == (HOUR_PAID, "ipn:12", 1)
    assert counted("AWAITING_PAYMENT", "FAIL", "ipn")[-1] == (HOUR_PAID, "ipn:undated", 1)
    assert not [row for row in counted("AWAITING_PAYMENT", "FAIL", "poll") if row[1].startswith("ipn:")]


def test_an_ipns_send_time_is_its_date_header_to_the_second() -> None:
    stored = datetime(2026, 12, 5, 10, 0, 1, 400000, tzinfo=UTC)
    assert reported_after(stored, {"Date": "Sat, 05 Dec 2026 10:00:00 GMT"}) == timedelta(seconds=1.4)
    assert reported_after(stored.replace(tzinfo=None), {"date": "Sat, 05 Dec 2026 09:59:00 GMT"}) == timedelta(
        seconds=61.4
    )
    assert reported_after(stored, {"date": "Sat, 05 Dec 2026 10:00:05 GMT"}) == timedelta(0)  # a clock ahead of ours
    for unsaid in ({}, {"date": "yesterday"}, {"date": "Sat, 05 Dec 2026 10:00:00"}, {"date": ""}):
        assert reported_after(stored, unsaid) is None, unsaid


def test_the_counts_of_orders_already_there_are_made_from_scratch_by_the_migration() -> None:
    orders = [(PLACED, "SUCCESS"), (PLACED, "AWAITING_PAYMENT"), (PLACED.replace(tzinfo=None), "FAIL")]
    made = recount([*orders, (PLACED, "CREATING")], [(PLACED, PLACED + timedelta(seconds=90))])
    assert made == {
        (HOUR_PLACED, "placed:succeeded"): 1,
        (HOUR_PLACED, "placed:pending"): 1,
        (HOUR_PLACED, "placed:failed"): 1,
        (HOUR_PAID, "payout:3"): 1,
    }


async def sums(db: Database) -> dict[tuple[datetime, str], int]:
    async with db.sessionmaker() as session:
        rows = (await session.exec(select(ActivityCount))).all()
    summed: dict[tuple[datetime, str], int] = {}
    for row in rows:
        key = (hour_of(row.hour), row.kind)
        summed[key] = summed.get(key, 0) + row.count
    return {key: value for key, value in summed.items() if value}


@both_databases
async def test_counts_kept_by_the_status_subscriber_hold_while_roll_ups_run_beside_the_changes(
    database_url: str,
) -> None:
    """Orders move through the real owner of status changes while roll-ups fold the counts: the sums hold."""
    await create_schema(database_url)
    db = Database.connect(database_url)
    changes = status_changes(db, live_publisher(db, make_channels()))
    async with db.sessionmaker() as session, session.begin():
        user = User(issuer="https://idp", subject="a", email="a@example.com")
        session.add(user)
        await session.flush()
        orders = [make_order(user_id=user.id, email=user.email, status="CREATING") for _ in range(12)]
        session.add_all(orders)
    ids = [order.id or 0 for order in orders]

    async def move(order_id: int, *path: OrderStatus) -> None:
        for status in path:
            async with changes.unit() as unit:
                locked = await unit.lock(order_id)
                assert locked is not None
                await unit.apply_status(locked, status, source="ipn")

    async def keep_rolling() -> None:
        for _ in range(10):
            await roll_up(db.engine)
            await asyncio.sleep(0.01)

    paths = [
        (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_COMPLETED, OrderStatus.SUCCESS),
        (OrderStatus.AWAITING_PAYMENT, OrderStatus.FAIL),
        (OrderStatus.AWAITING_PAYMENT,),
    ]
    await asyncio.gather(keep_rolling(), *(move(order_id, *paths[n % 3]) for n, order_id in enumerate(ids)))
    await move(ids[0], OrderStatus.SUCCESS)  # a duplicate: refused, nothing counted
    kept = await sums(db)
    await roll_up(db.engine)
    assert await sums(db) == kept  # a roll-up changes no sum
    async with db.sessionmaker() as session:
        assert len((await session.exec(select(ActivityCount))).all()) == len(kept)  # one row per hour and kind
        seen = await activity(session, zone=VIETNAM)
    await db.close()
    placed = {outcome: sum(seen.daily.by_outcome[outcome]) for outcome in Outcome}
    assert placed == {Outcome.SUCCEEDED: 4, Outcome.FAILED: 4, Outcome.PENDING: 4}
    assert seen.payouts.counts[-1][0] == 4 and sum(seen.payouts.counts[-1]) == 4  # paid within 15 s of placing


@both_databases
async def test_the_figures_sum_by_hour_and_day_of_the_console_zone(database_url: str) -> None:
    await create_schema(database_url)
    engine = make_engine(database_url)
    kept = [
        (datetime(2026, 12, 5, 9, tzinfo=UTC), "placed:succeeded", 2),  # 16:00 in Vietnam
        (datetime(2026, 12, 5, 10, tzinfo=UTC), "placed:succeeded", 1),  # 17:00
        (datetime(2026, 12, 4, 23, tzinfo=UTC), "placed:failed", 1),  # 06:00 today
        (datetime(2026, 12, 4, 16, tzinfo=UTC), "placed:pending", 1),  # 23:00 yesterday
        (datetime(2026, 12, 5, 10, tzinfo=UTC), "payout:3", 1),  # 60 to 120 s
        (datetime(2026, 12, 5, 10, tzinfo=UTC), "payout:8", 1),  # 20 to 30 min
        (datetime(2026, 12, 5, 10, tzinfo=UTC), "ipn:1", 3),  # three IPNs 1 to 2 s after Alix Pay sent them
        (datetime(2026, 12, 4, 10, tzinfo=UTC), "ipn:5", 1),  # one 10 to 30 s, yesterday
        (datetime(2026, 12, 5, 10, tzinfo=UTC), "ipn:undated", 2),
        (datetime(2026, 10, 1, tzinfo=UTC), "placed:succeeded", 5),  # outside every window
    ]
    rows = [{"hour": hour, "kind": kind, "count": count, "rolled": True} for hour, kind, count in kept]
    async with engine.begin() as connection:
        await connection.execute(insert(ActivityCount.__table__), rows)  # type: ignore[arg-type]
    async with make_sessionmaker(engine)() as session:
        partner = await save_partner(
            session, PartnerSpec("shop", "Shop", ["https://shop.example"], "HS256"), PARTNER_SECRETS
        )
        user = User(issuer="https://idp", subject="a", email="a@example.com")
        session.add(user)
        await session.flush()
        order = make_order(user_id=user.id, email=user.email)
        session.add(order)
        await session.flush()
        event = WebhookEvent(
            event_id="evt_1", partner_id=partner.id or 0, order_id=order.id or 0, type="order.succeeded", payload="{}"
        )
        session.add(event)
        await session.flush()
        for status_code, at in ((500, NOW - timedelta(hours=1)), (None, NOW - timedelta(days=2)), (200, NOW)):
            session.add(WebhookAttempt(event_id=event.id or 0, at=at, status_code=status_code))
        await session.commit()
        seen = await activity(session, zone=VIETNAM, now=NOW)
    await engine.dispose()
    hourly = seen.hourly.by_outcome
    assert (hourly[Outcome.SUCCEEDED][22], hourly[Outcome.SUCCEEDED][23]) == (2, 1)  # index 23 is 17:00 today
    assert hourly[Outcome.FAILED][12] == 1 and hourly[Outcome.PENDING][5] == 1  # index 0 is 18:00 yesterday
    daily = seen.daily.by_outcome
    assert (daily[Outcome.SUCCEEDED][29], daily[Outcome.FAILED][29], daily[Outcome.PENDING][28]) == (3, 1, 1)
    assert sum(sum(counts) for counts in daily.values()) == 5  # October's are outside the 30 days
    assert seen.daily.success_rate(29) == pytest.approx(3 / 4) and seen.daily.success_rate(28) is None
    assert seen.payouts.quantile(29, 0.5) == pytest.approx(120)  # 90 s and 25 min: the middle is 120 s
    assert seen.ipn_delays.quantile(29, 0.5) == pytest.approx(1.5) and seen.ipn_delays.quantile(28, 0.5) == 20
    assert seen.ipn_delays.overall(0.95) == pytest.approx(26) and seen.undated_ipns == 2
    assert seen.webhooks[29] == 1 and seen.webhooks[27] == 1 and sum(seen.webhooks) == 2  # a 2xx is no failure
    drawn = {chart.key: chart for chart in charts(seen)}
    assert drawn["volume-days"].facts["total"] == 5 and drawn["success-days"].facts["rate"] == pytest.approx(3 / 4)
    assert len(drawn["volume-hours"].bars()) == 4 and drawn["volume-hours"].top == 2.0
    assert drawn["ipn-days"].facts["undated"] == 2 and drawn["ipn-days"].top == 30.0


async def test_support_and_operators_see_the_charts_and_a_person_does_not(live_app: LiveApp) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    home = await agent.get("/support/")
    assert home.status_code == 200 and 'id="activity"' in home.text
    assert len(re.findall(r'<svg class="chart-plot"[^>]*role="img"', home.text)) == 6
    assert "No cash-out was placed in the last 24 hours." in home.text
    fragment = await agent.get("/activity", headers={"hx-request": "true"})
    assert fragment.status_code == 200 and fragment.text.count("<table") == 6 and "<html" not in fragment.text
    admin = await signed_in_client(live_app, "admin@example.com")
    assert 'id="activity"' in (await admin.get("/operations")).text
    person = await signed_in_client(live_app)
    assert (await person.get("/activity")).status_code == 403
    vietnamese = await signed_in_client(live_app, "support@example.com", lang="vi")
    assert "Cash-outs per hour" not in (await vietnamese.get("/activity")).text
