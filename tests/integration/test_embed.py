"""The hosted page for partners over HTTP: launch tokens, the embedded session, framing, CSRF, webhooks."""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc.jwk import OctKey
from litestar import Litestar, Request, Response, post
from litestar.testing import AsyncTestClient
from sqlmodel import func, select

from tests.builders import PARTNER_SECRETS, make_order
from tests.conftest import create_schema
from tests.embed_tokens import HS_SECRET, example_partner, mint
from tests.integration.conftest import both_databases
from tests.processes import serving
from webapp.app import create_app
from webapp.auth.models import User
from webapp.config import DatabaseSettings, Settings
from webapp.db import Database, make_engine, make_sessionmaker
from webapp.dev.stack import free_port
from webapp.embed.models import LaunchTokenUse, Partner, WebhookAttempt, WebhookEvent
from webapp.embed.partners import (
    PartnerSpec,
    rotate_launch_secret,
    rotate_webhook_secret,
    save_partner,
    set_enabled,
)
from webapp.embed.signatures import signed_return_url
from webapp.embed.webhooks import DeliveryPolicy, WebhookSender
from webapp.orders.recipients import SavedRecipient
from webapp.orders.statuses import OrderStatus
from webapp.orders.transitions import StatusChanges
from webapp.services import live_publisher, status_changes

BASE_URL = "https://testserver.local"
ORIGINS = ["https://m.acme.example", "https://wallet.acme.example"]
RETURN_URL = "https://wallet.acme.example/back"
KEY = OctKey.import_key(HS_SECRET)


def token(**overrides: Any) -> str:
    return mint(KEY, **({"aud": BASE_URL} | overrides))


class Embed:
    def __init__(self, app: Litestar, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.engine = make_engine(settings.database.url)
        self.sessionmaker = make_sessionmaker(self.engine)

    def client(self) -> AsyncTestClient[Litestar]:
        return AsyncTestClient(app=self.app, base_url=BASE_URL)

    async def partner(self, slug: str = "acme", **overrides: Any) -> Partner:
        spec = PartnerSpec(
            slug=slug,
            name="Acme Wallet",
            origins=overrides.pop("origins", ORIGINS),
            return_urls=[RETURN_URL],
            token_alg="HS256",
            token_key=HS_SECRET,
            webhook_url=overrides.pop("webhook_url", None),
            **overrides,
        )
        async with self.sessionmaker() as session, session.begin():
            return await save_partner(session, spec, PARTNER_SECRETS)

    async def count(self, table: type) -> int:
        async with self.sessionmaker() as session:
            return (await session.exec(select(func.count()).select_from(table))).one()


@pytest.fixture
async def embed(settings: Settings) -> AsyncIterator[Embed]:
    settings = settings.model_copy(update={"public_base_url": BASE_URL})
    await create_schema(settings.database.url)
    harness = Embed(create_app(settings), settings)
    await harness.partner()
    yield harness
    await harness.engine.dispose()


def changes_of(embed: Embed) -> StatusChanges:
    """The owner of status changes on the embedded app's database, publishing to its live channels."""
    db = Database.on(embed.engine)
    return status_changes(db, live_publisher(db, embed.app.plugins.get("ChannelsPlugin")))


async def start(client: AsyncTestClient[Litestar], launch: str, slug: str = "acme", **query: str) -> Any:
    return await client.get(f"/embed/{slug}/start", params={"token": launch, **query}, follow_redirects=False)


async def test_a_launch_token_opens_an_embedded_session_framed_only_by_the_partner(embed: Embed) -> None:
    async with embed.client() as client:
        started = await start(client, token(amount=250_000), origin=ORIGINS[1])
        assert started.status_code == 303, started.text
        assert started.headers["location"] == "/embed/acme/orders/new?launched=1"
        cookie = next(value for value in started.headers.get_list("set-cookie") if value.startswith("embed_session="))
        for attribute in ("Path=/embed", "SameSite=none", "Secure", "HttpOnly", "Partitioned"):
            assert attribute.lower() in cookie.lower(), cookie

        form = await client.get("/embed/acme/orders/new")
        assert form.status_code == 200
        policy = form.headers["content-security-policy"]
        assert re.search(r"frame-ancestors ([^;]+)", policy).group(1) == " ".join(ORIGINS)
        assert "x-frame-options" not in form.headers
        assert 'data-parent-origin="https://wallet.acme.example"' in form.text
        assert 'value="250000"' in form.text  # the token's amount starts the form
        assert "main-nav" not in form.text and "Acme Wallet" in form.text
        assert 'action="/embed/acme/orders/review"' in form.text  # every link stays in the partner's flow

        # Our own pages still refuse every frame, and the embedded session is no sign-in to them.
        own = await client.get("/orders/", follow_redirects=False)
        assert own.status_code == 303 and own.headers["location"].startswith("/login")
        assert "frame-ancestors 'none'" in own.headers["content-security-policy"]
        assert own.headers["x-frame-options"] == "DENY"
    async with embed.sessionmaker() as session:
        user = (await session.exec(select(User))).one()
    assert (user.issuer, user.subject, user.email) == ("partner:acme", "wallet-user-7", "wallet.user@example.com")


async def test_a_launch_without_origin_posts_to_the_first_origin_the_partner_registered(embed: Embed) -> None:
    await embed.partner("zeta", origins=["https://wallet.zeta.example", "https://m.zeta.example"])
    async with embed.client() as client:
        started = await start(client, token(iss="zeta"), slug="zeta")  # no `origin`: the default one
        assert started.status_code == 303, started.text
        form = await client.get("/embed/zeta/orders/new")
        assert 'data-parent-origin="https://wallet.zeta.example"' in form.text  # not the first in sorted order


@pytest.mark.parametrize(
    ("make_request", "status", "words"),
    [
        (lambda: ("acme", token(exp=int(time.time()) - 600)), 403, "hết hạn"),
        (lambda: ("acme", token(aud="https://elsewhere.example")), 403, "dịch vụ khác"),
        (lambda: ("acme", token(email_verified=False)), 403, "chưa được ứng dụng bạn vừa dùng xác minh"),
        (lambda: ("acme", token(return_url="https://evil.example/back")), 403, "địa chỉ mà chúng tôi không biết"),
        (lambda: ("acme", mint(OctKey.import_key("x" * 40), aud=BASE_URL)), 403, "không được ký"),
        (lambda: ("nobody", token(iss="nobody")), 404, "không biết ứng dụng"),
        (lambda: ("acme", token(exp=int(time.time()) + 86_400)), 403, "quá lâu"),
    ],
)
async def test_a_refused_launch_shows_why_in_the_persons_language_and_creates_nothing(
    embed: Embed, make_request: Any, status: int, words: str
) -> None:
    slug, launch = make_request()
    async with embed.client() as client:
        refused = await client.get(f"/embed/{slug}/start", params={"token": launch}, headers={"accept-language": "vi"})
    assert refused.status_code == status
    assert words in refused.text
    assert "Không có gì được tạo hay thay đổi." in refused.text
    assert not any(value.startswith("embed_session=") for value in refused.headers.get_list("set-cookie"))
    assert (await embed.count(User), await embed.count(LaunchTokenUse)) == (0, 0)


async def test_a_disabled_partner_and_a_replayed_token_are_refused(embed: Embed) -> None:
    launch = token()
    async with embed.client() as client:
        assert (await start(client, launch)).status_code == 303
        replayed = await start(client, launch)
        assert replayed.status_code == 403 and "already been used" in replayed.text
        async with embed.sessionmaker() as session, session.begin():
            await set_enabled(session, "acme", enabled=False)
        switched_off = await start(client, token())
        assert switched_off.status_code == 403 and "switched off" in switched_off.text
        # An open embedded session stops working too.
        assert (await client.get("/embed/acme/orders/new")).status_code == 403
    assert await embed.count(LaunchTokenUse) == 1


@both_databases
async def test_one_token_opens_one_session_when_two_requests_race(database_url: str, settings: Settings) -> None:
    settings = settings.model_copy(update={"public_base_url": BASE_URL, "database": DatabaseSettings(url=database_url)})
    await create_schema(database_url)
    harness = Embed(create_app(settings), settings)
    try:
        await harness.partner()
        launch = token()
        async with harness.client() as client:
            answers = await asyncio.gather(start(client, launch), start(client, launch))
        assert sorted(answer.status_code for answer in answers) == [303, 403]
        assert await harness.count(LaunchTokenUse) == 1
    finally:
        await harness.engine.dispose()


async def test_embedded_pages_need_that_partners_session_and_a_csrf_token(embed: Embed) -> None:
    await embed.partner("other")
    async with embed.client() as stranger:
        ended = await stranger.get("/embed/acme/orders/new")
        assert ended.status_code == 401 and "session has ended" in ended.text
    async with embed.client() as client:
        await start(client, token())
        assert (await client.get("/embed/other/orders/new")).status_code == 401  # another partner's pages
        form = await client.get("/embed/acme/orders/new")
        csrf = re.search(r'"x-csrftoken": "([^"]+)"', form.text).group(1)
        details = {"bank": "970407", "account_number": "19030413601018", "recipient_name": "Nguyen Van Anh"}
        details["amount"] = "100000"
        forged = await client.post("/embed/acme/orders/review", data=details)
        assert forged.status_code == 403 and "did not come from our page" in forged.text
        wrong = await client.post("/embed/acme/orders/review", data=details, headers={"x-csrftoken": "nope"})
        assert wrong.status_code == 403
        reviewed = await client.post("/embed/acme/orders/review", data=details, headers={"x-csrftoken": csrf})
        assert reviewed.status_code == 200 and "Confirm and send" in reviewed.text
        assert 'action="/embed/acme/orders"' in reviewed.text


async def test_an_embedded_session_sees_only_its_own_orders(embed: Embed) -> None:
    async with embed.sessionmaker() as session, session.begin():
        someone = User(issuer="https://idp.example", subject="s1", email="wallet.user@example.com")
        session.add(someone)
        await session.flush()
        theirs = make_order(user_id=someone.id, email=someone.email)
        session.add(theirs)
    async with embed.client() as client:
        await start(client, token())
        page = await client.get(f"/embed/acme/orders/{theirs.external_order_id}")
        assert page.status_code == 404
        listing = await client.get("/embed/acme/orders/")
        assert theirs.external_order_id not in listing.text


class Receiver:
    """A partner's webhook endpoint that answers 500, then 503 with Retry-After, then 200."""

    def __init__(self) -> None:
        self.answers = [500, 503, 200]
        self.received: list[tuple[bytes, str, str]] = []

    def app(self) -> Litestar:
        @post("/hooks", status_code=200)
        async def hooks(request: Request) -> Response[str]:
            self.received.append(
                (await request.body(), request.headers["cashout-signature"], request.headers["cashout-event-id"])
            )
            status = self.answers.pop(0) if self.answers else 200
            return Response("", status_code=status, headers={"retry-after": "0"} if status == 503 else {})

        return Litestar(route_handlers=[hooks])


async def test_webhooks_are_written_once_per_change_and_delivered_once_after_failures(embed: Embed) -> None:
    receiver, port = Receiver(), free_port()
    partner = await embed.partner(webhook_url=f"http://127.0.0.1:{port}/hooks")
    async with embed.sessionmaker() as session, session.begin():
        user = User(issuer="partner:acme", subject="wallet-user-7", email="wallet.user@example.com")
        session.add(user)
        await session.flush()
        order = make_order(user_id=user.id, email=user.email, partner_id=partner.id, partner_user_id="wallet-user-7")
        session.add(order)
    changes = changes_of(embed)
    for _ in range(3):  # the same notification three times: one change, one event
        async with changes.unit() as change:
            await change.apply_status(await change.lock(order.id), OrderStatus.SUCCESS, source="ipn")
    assert await embed.count(WebhookEvent) == 1

    http = httpx.AsyncClient(timeout=5)
    sender = WebhookSender(embed.sessionmaker, http, PARTNER_SECRETS, DeliveryPolicy())
    async with serving(receiver.app(), port), http:
        for _ in range(3):
            async with embed.sessionmaker() as session, session.begin():  # due now, as if the wait were over
                event = (await session.exec(select(WebhookEvent))).one()
                if event.state == "pending":
                    event.next_attempt_at = event.created_at
            await sender.deliver_due()
    async with embed.sessionmaker() as session:
        event = (await session.exec(select(WebhookEvent))).one()
        attempts = (await session.exec(select(WebhookAttempt))).all()
    assert (event.state, event.attempts, event.type) == ("delivered", 3, "order.completed")
    assert [attempt.status_code for attempt in attempts] == [500, 503, 200]
    assert len(receiver.received) == 3 and {event_id for _, _, event_id in receiver.received} == {event.event_id}
    body, signature, _ = receiver.received[-1]
    assert example_partner().verify_signature(
        PARTNER_SECRETS.webhook_secrets(partner)[0], body, signature, int(time.time())
    )
    assert b'"status":"SUCCESS"' in body and b'"partnerUserId":"wallet-user-7"' in body


async def test_the_page_and_the_webhooks_name_each_status_with_the_same_event(embed: Embed) -> None:
    """One rule (`embed/events.py`): the event the embedded page posts for a status is the webhook's for it."""
    partner = await embed.partner(webhook_url="http://127.0.0.1:9/hooks")
    async with embed.client() as client:
        await start(client, token())
        async with embed.sessionmaker() as session, session.begin():
            user = (await session.exec(select(User))).one()
            order = make_order(user_id=user.id, email=user.email, partner_id=partner.id, status="CREATING")
            session.add(order)
        changes = changes_of(embed)
        page_events, query = [], "?placed=1"  # the order page right after Confirm, then as it updates
        for status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_COMPLETED, OrderStatus.FAIL):
            async with changes.unit() as change:
                await change.apply_status(await change.lock(order.id), status, source="ipn")
            page = await client.get(f"/embed/acme/orders/{order.external_order_id}{query}")
            page_events.append(re.search(r'data-partner-event="([^"]+)"', page.text).group(1))
            query = ""
    async with embed.sessionmaker() as session:
        webhooks = (await session.exec(select(WebhookEvent).order_by(WebhookEvent.id))).all()
    assert [event.type for event in webhooks] == page_events == ["order.created", "order.status", "order.failed"]


async def test_redirect_mode_returns_to_the_partner_with_signed_order_and_status(embed: Embed) -> None:
    async with embed.client() as client:
        await start(client, token(return_url=RETURN_URL))
        async with embed.sessionmaker() as session, session.begin():
            user = (await session.exec(select(User))).one()
            order = make_order(user_id=user.id, email=user.email, status="SUCCESS")
            session.add(order)
        page = await client.get(f"/embed/acme/orders/{order.external_order_id}")
        assert "Back to Acme Wallet" in page.text
        back = await client.get(f"/embed/acme/orders/{order.external_order_id}/return", follow_redirects=False)
    assert back.status_code == 303
    target = httpx.URL(back.headers["location"])
    assert str(target.copy_with(query=None)) == RETURN_URL
    params = dict(target.params)
    assert (params["order_id"], params["status"]) == (order.external_order_id, "SUCCESS")
    partner = await embed.partner()  # unchanged secret: save keeps it
    expected = signed_return_url(
        PARTNER_SECRETS.webhook_secrets(partner),
        RETURN_URL,
        order_id=params["order_id"],
        status="SUCCESS",
        timestamp=int(params["t"]),
    )
    assert httpx.URL(expected).params["sig"] == params["sig"]


async def test_an_embedded_session_keeps_its_saved_recipients_apart_from_the_persons_own(embed: Embed) -> None:
    """The same email signed in on our site and launched by a partner are two people: neither sees the other's."""
    async with embed.client() as client:
        await start(client, token())
        async with embed.sessionmaker() as session, session.begin():
            wallet_user = (await session.exec(select(User).where(User.issuer == "partner:acme"))).one()
            own = User(issuer="https://idp.example", subject="s1", email=wallet_user.email)
            session.add(own)
            await session.flush()
            mine, theirs = (
                SavedRecipient(
                    user_id=user.id or 0,
                    bank_bin="970407",
                    bank_name="Techcombank",
                    account_number=account,
                    recipient_name="NGUYEN VAN ANH",
                )
                for user, account in ((own, "19030413601018"), (wallet_user, "0071000123456"))
            )
            session.add_all([mine, theirs])
        page = await client.get("/embed/acme/orders/new")
        assert f"/embed/acme/orders/new?recipient={theirs.id}" in page.text and "••••1018" not in page.text
        filled = await client.get("/embed/acme/orders/new", params={"recipient": mine.id})
        assert 'value="19030413601018"' not in filled.text  # the person's own recipient fills nothing here


async def expire_replaced_secrets(embed: Embed) -> None:
    """The grace period over, as if a day had passed."""
    async with embed.sessionmaker() as session, session.begin():
        partner = (await session.exec(select(Partner).where(Partner.slug == "acme"))).one()
        partner.previous_token_until = partner.previous_webhook_secret_until = datetime.now(UTC) - timedelta(seconds=1)


async def test_after_a_launch_secret_rotation_tokens_made_with_the_old_secret_count_until_the_grace_ends(
    embed: Embed,
) -> None:
    async with embed.sessionmaker() as session, session.begin():
        new_secret = await rotate_launch_secret(session, "acme", PARTNER_SECRETS)
    assert new_secret and new_secret != HS_SECRET
    async with embed.client() as client:
        assert (await start(client, token())).status_code == 303  # the partner's server has not switched yet
        assert (await start(client, mint(OctKey.import_key(new_secret), aud=BASE_URL))).status_code == 303
        await expire_replaced_secrets(embed)
        late = await start(client, token())
        assert late.status_code == 403  # the old secret no longer counts
        assert (await start(client, mint(OctKey.import_key(new_secret), aud=BASE_URL))).status_code == 303


async def test_after_a_webhook_secret_rotation_deliveries_carry_both_signatures_until_the_grace_ends(
    embed: Embed,
) -> None:
    receiver, port = Receiver(), free_port()
    partner = await embed.partner(webhook_url=f"http://127.0.0.1:{port}/hooks")
    old_secret = PARTNER_SECRETS.webhook_secrets(partner)[0]
    async with embed.sessionmaker() as session, session.begin():
        new_secret = await rotate_webhook_secret(session, "acme", PARTNER_SECRETS)
        user = User(issuer="partner:acme", subject="wallet-user-7", email="wallet.user@example.com")
        session.add(user)
        await session.flush()
        orders = [make_order(user_id=user.id, email=user.email, partner_id=partner.id) for _ in range(2)]
        session.add_all(orders)
    assert new_secret
    changes = changes_of(embed)
    recipe = example_partner().verify_signature
    http = httpx.AsyncClient(timeout=5)
    sender = WebhookSender(embed.sessionmaker, http, PARTNER_SECRETS, DeliveryPolicy())
    async with serving(receiver.app(), port), http:
        for order in orders:
            async with changes.unit() as change:
                await change.apply_status(await change.lock(order.id), OrderStatus.SUCCESS, source="ipn")
            await sender.deliver_due()
            await expire_replaced_secrets(embed)
    (during, during_header, _), (after, after_header, _) = receiver.received
    now = int(time.time())
    assert recipe(old_secret, during, during_header, now) and recipe(new_secret, during, during_header, now)
    assert not recipe(old_secret, after, after_header, now) and recipe(new_secret, after, after_header, now)
    assert (during_header.count("v1="), after_header.count("v1=")) == (2, 1)
