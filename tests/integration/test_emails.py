"""Emails to the person: written to the outbox with each status change, sent over real SMTP to the mailbox sink."""

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.builders import PARTNER_SECRETS, make_order, named_links
from tests.conftest import RsaKeys, create_schema
from tests.integration.conftest import LiveApp, live_settings, serving_live_app
from tests.integration.flow import Db, place_order, signed_in_client
from tests.oidc_support import Idp
from tests.processes import MailboxServer, SandboxServer, async_wait_for, running_mailbox
from webapp.audit import AuditEntry
from webapp.auth.models import User
from webapp.config import Settings, SmtpServer
from webapp.db import Database, utcnow
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.notifications import mailer as mailer_module
from webapp.notifications.kinds import KINDS
from webapp.notifications.mailer import Mailer
from webapp.notifications.models import EmailMessage
from webapp.operations.alarms import MAIL_PARKED, AlarmState
from webapp.orders.live import make_channels
from webapp.orders.models import Order
from webapp.orders.statuses import OrderStatus
from webapp.orders.transitions import StatusChanges
from webapp.outbox import DeliveryPolicy
from webapp.rendering import make_environment
from webapp.services import live_publisher, status_changes

SUBJECT_WORDS = {"en": "Cash-out", "vi": "Lệnh rút", "zh": "提现"}
SUPPORT_CONTACT = "help@cashout.example"
REFUSED_ACCOUNT = "1903 0413 6000 00"
"""The sandbox's bank refuses an account ending 0000: the order ends FAIL."""


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailboxServer]:
    directory = tmp_path_factory.mktemp("mailbox")
    with running_mailbox(directory / "maildir", directory / "mailbox.log") as server:
        yield server


@pytest.fixture
async def mail_app(
    database_url: str, rsa_keys: RsaKeys, app_port: int, app_sandbox: SandboxServer, idp: Idp, mailbox: MailboxServer
) -> AsyncIterator[LiveApp]:
    """The live app with its mail going to the mailbox sink, sent every 0.2 s."""
    app_sandbox.set_faults()
    settings = live_settings(port=app_port, database_url=database_url, sandbox=app_sandbox, rsa_keys=rsa_keys, idp=idp)
    settings = settings.model_copy(
        update={
            "smtp_url": SecretStr(mailbox.smtp_url),
            "mail_interval_seconds": 0.2,
            "alarm_interval_seconds": 0.2,
            "support_emails": ["support@example.com"],
            "support_contact_email": SUPPORT_CONTACT,
        }
    )
    async with serving_live_app(settings, app_port, app_sandbox) as app:
        yield app


async def completed_and_mailed(app: LiveApp, order_id: str) -> tuple[Order, list[EmailMessage]]:
    """The order once SUCCESS, and its outbox once the outcome's mail is written and nothing is left to send."""
    db = Db(app)
    try:
        order = await db.final(order_id, "SUCCESS")

        async def settled() -> list[EmailMessage] | None:
            async with db.sessionmaker() as session:
                rows = (await session.exec(select(EmailMessage).where(EmailMessage.order_id == order.id))).all()
            done = any(row.kind in ("done", "failed") for row in rows)
            return list(rows) if done and all(row.state != "pending" for row in rows) else None

        return order, await async_wait_for(settled, what="every mail of the order settled")
    finally:
        await db.close()


def unique_email(lang: str) -> str:
    return f"mail-{lang}-{uuid.uuid4().hex[:8]}@example.com"


@pytest.mark.parametrize("lang", ["en", "vi", "zh"])
async def test_each_status_is_mailed_once_in_the_persons_language_even_with_duplicate_ipns(
    mail_app: LiveApp, mailbox: MailboxServer, lang: str
) -> None:
    mail_app.sandbox.set_faults(duplicate=3, out_of_order=True)
    email = unique_email(lang)
    client = await signed_in_client(mail_app, email=email, lang=lang)
    order_id = await place_order(client)
    order, rows = await completed_and_mailed(mail_app, order_id)
    mails = mailbox.messages(email)
    # Out of order, SUCCESS may arrive first and PAYMENT_COMPLETED is then stale: never mailed after the outcome.
    assert sorted(row.kind for row in rows) in (["done", "paid_out", "placed"], ["done", "placed"])
    assert {row.state for row in rows} == {"sent"}
    assert len(mails) == len(rows)  # one mail per status, whatever arrived three times
    assert len({mail["message_id"] for mail in mails}) == len(mails)
    for mail in mails:
        assert mail["language"] == lang
        assert SUBJECT_WORDS[lang] in mail["subject"]
        assert order.reference in mail["subject"]
        assert f"{mail_app.url}/orders/{order_id}" in mail["text"]
        assert f'href="{mail_app.url}/orders/{order_id}"' in mail["html"]
        assert "USDT" in mail["text"]  # what the wallet pays, with its unit


@pytest.mark.parametrize("lang", ["en", "vi", "zh"])
async def test_a_refused_cash_out_is_mailed_in_the_persons_language_naming_support(
    mail_app: LiveApp, mailbox: MailboxServer, lang: str
) -> None:
    email = unique_email(lang)
    client = await signed_in_client(mail_app, email=email, lang=lang)
    order_id = await place_order(client, account_number=REFUSED_ACCOUNT)
    db = Db(mail_app)
    try:
        order = await db.final(order_id, "FAIL")

        async def failure_mailed() -> dict | None:
            async with db.sessionmaker() as session:
                row = (
                    await session.exec(
                        select(EmailMessage).where(EmailMessage.order_id == order.id, EmailMessage.kind == "failed")
                    )
                ).first()
            return row if row is not None and row.state == "sent" else None

        row = await async_wait_for(failure_mailed, what="the failure's mail sent")
    finally:
        await db.close()
    (mail,) = [mail for mail in mailbox.messages(email) if mail["subject"] == row.subject]
    assert mail["language"] == lang and SUBJECT_WORDS[lang] in mail["subject"]
    assert SUPPORT_CONTACT in mail["text"]
    assert f'href="mailto:{SUPPORT_CONTACT}?subject={order.reference}"' in mail["html"]


async def test_an_email_that_cannot_be_built_holds_up_no_other_and_is_parked_for_support(
    mail_app: LiveApp, mailbox: MailboxServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp")
    broken, fine = unique_email("en"), [unique_email("en"), unique_email("en")]
    build = mailer_module.compose

    def compose_unless_broken(message: EmailMessage, order: Order, **options: Any) -> Any:
        if message.recipient == broken:
            raise RuntimeError(f"cannot build the mail to {broken}")
        return build(message, order, **options)

    monkeypatch.setattr(mailer_module, "compose", compose_unless_broken)
    failures_before = build_failures()
    broken_order = await place_order(await signed_in_client(mail_app, email=broken))  # first in every round
    for email in fine:
        await place_order(await signed_in_client(mail_app, email=email))
    db = Db(mail_app)
    try:
        order = await db.final(broken_order, "SUCCESS")
        for email in fine:  # mailed while the broken order's mails kept failing before them in the same rounds
            await async_wait_for(mails_to(mailbox, email, 3), what=f"every mail to {email}")
        parked = await park_by_passing_time(db, order.id or 0)
        alarm = await async_wait_for(lambda: open_alarm(db, MAIL_PARKED), what="the parked-mail alarm")
    finally:
        await db.close()
    assert mailbox.messages(broken) == []
    assert {(row.state, row.attempts) for row in parked} == {("parked", 5)}  # DeliveryPolicy.park_after
    assert {row.last_error.split(":")[0] for row in parked} == {"RuntimeError at test_emails.py"}
    # The alarm opened once, naming how many were parked then (the order's mails park one after another).
    waiting = re.search(r"(\d+) emails could not be built", alarm.detail)
    assert broken not in alarm.detail and waiting is not None and 1 <= int(waiting.group(1)) <= len(parked)
    assert (
        "RuntimeError at test_emails.py" in caplog.text and broken not in caplog.text
    )  # what raised, not what it said
    counted = {kind: build_failures()[kind] - failures_before[kind] for kind in failures_before}
    assert counted == {kind: 5 * (kind in {row.kind for row in parked}) for kind in KINDS}  # the metric, by kind
    await support_sends_again(mail_app, mailbox, monkeypatch, broken_order, parked, broken)


def build_failures() -> dict[str, float]:
    """`cashout_mail_failures_total{stage="build"}` by kind, as `/metrics` exports it."""
    return {
        kind: REGISTRY.get_sample_value("cashout_mail_failures_total", {"kind": kind, "stage": "build"}) or 0.0
        for kind in KINDS
    }


async def park_by_passing_time(db: Db, order_id: int) -> list[EmailMessage]:
    """Make each failed try of the order's mails due again at once (as if the backoff had passed) until parked."""

    async def all_parked() -> list[EmailMessage] | None:
        async with db.sessionmaker() as session, session.begin():
            rows = (await session.exec(select(EmailMessage).where(EmailMessage.order_id == order_id))).all()
            for row in rows:
                if row.state == "pending" and row.attempts:
                    row.next_attempt_at = utcnow()
        done = len(rows) == 3 and all(row.state == "parked" for row in rows)  # placed, paid out, done
        return list(rows) if done else None

    return await async_wait_for(all_parked, what="the broken order's mails parked")


def mails_to(mailbox: MailboxServer, email: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def arrived() -> bool:
        return len(mailbox.messages(email)) == count

    return arrived


async def open_alarm(db: Db, name: str) -> AlarmState | None:
    async with db.sessionmaker() as session:
        alarm = await session.get(AlarmState, name)
    return alarm if alarm is not None and alarm.open else None


async def support_sends_again(
    app: LiveApp,
    mailbox: MailboxServer,
    monkeypatch: pytest.MonkeyPatch,
    order_id: str,
    parked: list[EmailMessage],
    email: str,
) -> None:
    """Support sees the parked mails with their error; once the bug is fixed, *Send again* delivers each, audited."""
    agent = await signed_in_client(app, email="support@example.com")
    page = await agent.get(f"/support/orders/{order_id}")
    assert page.text.count("not sent: it could not be built; waiting for a person") == len(parked)
    assert "RuntimeError at test_emails.py:" in page.text and email not in page.text
    monkeypatch.undo()  # the bug is fixed
    for row in parked:
        sent = await agent.post(f"/support/emails/{row.id}/resend", headers={"x-csrftoken": agent.cookies["csrftoken"]})
        assert sent.status_code == 303 and sent.headers["location"] == f"/support/orders/{order_id}"
    again = await agent.post(
        f"/support/emails/{parked[0].id}/resend", headers={"x-csrftoken": agent.cookies["csrftoken"]}
    )
    assert again.status_code in (303, 429)  # a second click: still in the outbox, or just sent again; no new mail
    await async_wait_for(mails_to(mailbox, email, len(parked)), what="the parked mails delivered")
    db = Db(app)
    try:
        await async_wait_for(lambda: _closed(db, MAIL_PARKED), what="the parked-mail alarm resolved")
        async with db.sessionmaker() as session:
            actions = (await session.exec(select(AuditEntry.action))).all()
    finally:
        await db.close()
    assert actions.count("email_resent") == len(parked)


async def _closed(db: Db, name: str) -> bool:
    return await open_alarm(db, name) is None


async def test_support_sees_each_mail_on_the_order_timeline(mail_app: LiveApp, mailbox: MailboxServer) -> None:
    email = unique_email("en")
    client = await signed_in_client(mail_app, email=email)
    order_id = await place_order(client)
    _, rows = await completed_and_mailed(mail_app, order_id)
    support = await signed_in_client(mail_app, email="support@example.com")
    page = await support.get(f"/support/orders/{order_id}")
    assert page.status_code == 200
    assert page.text.count("Email to ") == len(rows) == len(mailbox.messages(email)) >= 2
    assert "— sent" in page.text
    assert email not in page.text  # the recipient is masked like every other personal detail


async def test_the_person_can_turn_progress_emails_off(mail_app: LiveApp, mailbox: MailboxServer) -> None:
    email = unique_email("en")
    client = await signed_in_client(mail_app, email=email)
    page = await client.get("/account/notifications")
    assert page.status_code == 200 and 'name="email_updates" checked' in page.text
    saved = await client.post("/account/notifications", data={"_csrf_token": client.cookies["csrftoken"]})
    assert saved.status_code == 200 and "Your choice is saved." in saved.text
    assert 'name="email_updates" checked' not in saved.text
    order_id = await place_order(client)
    order, rows = await completed_and_mailed(mail_app, order_id)
    states = {row.kind: row.state for row in rows}
    assert states.pop("done") == "sent"  # the outcome is always mailed
    assert set(states.values()) == {"opted_out"}
    assert [mail["subject"] for mail in mailbox.messages(email)] == [
        f"Cash-out {order.reference} is complete: ₫100,000"
    ]


def mailer_to(smtp_url: str, sessionmaker: async_sessionmaker[AsyncSession], timeout: float = 30.0) -> Mailer:
    """A mailer sending to `smtp_url` that retries at once."""
    return Mailer(
        sessionmaker,
        SmtpServer.from_url(smtp_url),
        env=make_environment(),
        sender="Cash-out <cashout@example.com>",
        links=named_links("https://cashout.example.com"),
        policy=DeliveryPolicy(base_delay=timedelta(0)),
        timeout=timeout,
    )


@pytest.fixture
async def outbox(settings: Settings, mailbox: MailboxServer) -> AsyncIterator[tuple[Database, StatusChanges, Mailer]]:
    """The one owner of status changes and a mailer that retries at once, on a fresh database."""
    await create_schema(settings.database.url)
    db = Database.connect(settings.database.url)
    yield db, status_changes(db, live_publisher(db, make_channels())), mailer_to(mailbox.smtp_url, db.sessionmaker)
    await db.close()


async def placed_order(
    db: Database, changes: StatusChanges, email: str, *, locale: str = "en", partner_id: int | None = None
) -> int:
    async with db.sessionmaker() as session, session.begin():
        user = User(issuer="https://idp.example", subject=email, email=email)
        session.add(user)
        await session.flush()
        order = make_order(user_id=user.id, email=email, status="CREATING", locale=locale, partner_id=partner_id)
        session.add(order)
        await session.flush()
        order_id = order.id or 0
    async with changes.unit() as change:
        await change.apply_status(await change.lock(order_id), OrderStatus.AWAITING_PAYMENT, source="create")  # type: ignore[arg-type]
    return order_id


async def test_a_mail_the_server_refuses_is_sent_again_and_arrives_once(
    outbox: tuple[Database, StatusChanges, Mailer], mailbox: MailboxServer
) -> None:
    db, changes, mailer = outbox
    email = unique_email("en")
    await placed_order(db, changes, email)
    mailbox.refuse(1)
    assert await mailer.deliver_due() == 1
    async with db.sessionmaker() as session:
        refused = (await session.exec(select(EmailMessage))).one()
    assert (refused.state, refused.attempts) == ("pending", 1)
    assert refused.last_error.startswith("SMTP 451")
    assert mailbox.messages(email) == []
    assert await mailer.deliver_due() == 1
    assert await mailer.deliver_due() == 0  # sent: nothing left to send
    async with db.sessionmaker() as session:
        sent = (await session.exec(select(EmailMessage))).one()
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 2, "")
    assert len(mailbox.messages(email)) == 1


async def test_a_mail_server_that_is_down_keeps_the_mail_for_later(
    outbox: tuple[Database, StatusChanges, Mailer], settings: Settings
) -> None:
    db, changes, working = outbox
    await placed_order(db, changes, unique_email("en"))
    down = mailer_to("smtp://127.0.0.1:9", db.sessionmaker, timeout=2)
    assert await down.deliver_due() == 1
    async with db.sessionmaker() as session:
        kept = (await session.exec(select(EmailMessage))).one()
    assert (kept.state, kept.attempts) == ("pending", 1) and kept.last_error
    assert await working.deliver_due() == 1
    async with db.sessionmaker() as session:
        assert (await session.exec(select(EmailMessage.state))).one() == "sent"


async def test_the_outbox_row_is_written_with_the_change_or_not_at_all(
    outbox: tuple[Database, StatusChanges, Mailer],
) -> None:
    db, changes, _ = outbox
    order_id = await placed_order(db, changes, unique_email("en"))
    with pytest.raises(RuntimeError):
        async with changes.unit() as change:
            await change.apply_status(await change.lock(order_id), OrderStatus.SUCCESS, source="ipn")  # type: ignore[arg-type]
            raise RuntimeError("the transaction fails after the change")
    async with db.sessionmaker() as session:
        kinds = (await session.exec(select(EmailMessage.kind).order_by(col(EmailMessage.id)))).all()
    assert kinds == ["placed"]  # the rolled-back SUCCESS owes no mail


async def test_orders_placed_through_a_partner_are_not_mailed(outbox: tuple[Database, StatusChanges, Mailer]) -> None:
    db, changes, mailer = outbox
    async with db.sessionmaker() as session, session.begin():
        spec = PartnerSpec(slug="wallet", name="Wallet", origins=["https://wallet.example"], token_alg="HS256")
        partner_id = (await save_partner(session, spec, PARTNER_SECRETS)).id
    await placed_order(db, changes, unique_email("en"), partner_id=partner_id)
    await placed_order(db, changes, unique_email("en"))
    async with db.sessionmaker() as session:
        owed = (await session.exec(select(EmailMessage.order_id))).all()
    assert len(owed) == 1  # only the order placed on our own pages; the partner hears by webhook
    assert await mailer.deliver_due() == 1


async def test_support_sends_a_delivered_email_again_once_audited_and_not_twice_in_a_row(
    mail_app: LiveApp, mailbox: MailboxServer
) -> None:
    """A customer says the mail never came: the agent sends it again from the customer's page; a second click in
    the next minutes is refused, so the customer gets one more mail, not two."""
    email = unique_email("en")
    order_id = await place_order(await signed_in_client(mail_app, email=email))
    order, rows = await completed_and_mailed(mail_app, order_id)
    before = len(mailbox.messages(email))
    done = next(row for row in rows if row.kind == "done")
    agent = await signed_in_client(mail_app, email="support@example.com")
    customer_page = await agent.get(f"/support/customers/{order.user_id}")
    assert f"/support/emails/{done.id}/resend" in customer_page.text and email not in customer_page.text
    headers = {"x-csrftoken": agent.cookies["csrftoken"]}
    sent = await agent.post(f"/support/emails/{done.id}/resend", data={"from": "customer"}, headers=headers)
    assert sent.status_code == 303 and sent.headers["location"] == f"/support/customers/{order.user_id}"
    await async_wait_for(mails_to(mailbox, email, before + 1), what="the mail sent again")
    again = await agent.post(f"/support/emails/{done.id}/resend", headers=headers)
    assert again.status_code == 429 and "a few minutes ago" in again.text
    await asyncio.sleep(1)  # the mailer runs every 0.2 s: a second mail would have gone by now
    assert len(mailbox.messages(email)) == before + 1
    resent = [mail for mail in mailbox.messages(email) if mail["subject"] == done.subject]
    assert len(resent) == 2  # the first delivery and the one sent again
    db = Db(mail_app)
    try:
        async with db.sessionmaker() as session:
            entries = (await session.exec(select(AuditEntry).where(AuditEntry.action == "email_resent"))).all()
    finally:
        await db.close()
    assert [(entry.actor, entry.order_id) for entry in entries] == [("support@example.com", order.id)]


async def test_the_language_a_person_chooses_follows_them_to_another_device_and_into_the_next_email(
    mail_app: LiveApp, mailbox: MailboxServer
) -> None:
    email = unique_email("en")
    laptop = await signed_in_client(mail_app, email=email)  # the browser asks for English
    order_id = await place_order(laptop)
    assert '<html lang="vi">' in (await laptop.get("/orders", params={"lang": "vi"})).text  # the switch, once
    assert '<html lang="vi">' in (await laptop.get("/orders")).text
    phone = await signed_in_client(mail_app, email=email)  # another device, English again, no cookie
    assert '<html lang="vi">' in (await phone.get("/orders")).text
    _, rows = await completed_and_mailed(mail_app, order_id)
    done = next(row for row in rows if row.kind == "done")
    assert done.locale == "vi" and SUBJECT_WORDS["vi"] in done.subject  # placed in English, told in Vietnamese
    assert any(mail["subject"] == done.subject for mail in mailbox.messages(email))
    assert '<html lang="zh-Hans">' in (await phone.get("/orders", params={"lang": "zh"})).text
    db = Db(mail_app)
    try:
        async with db.sessionmaker() as session:
            person = (await session.exec(select(User).where(User.email == email))).one()
    finally:
        await db.close()
    assert person.locale == "zh"  # the latest choice is the one kept
