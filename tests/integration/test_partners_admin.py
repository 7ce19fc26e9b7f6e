"""Admins manage partners on a page (and operators from the command line); every action is audited."""

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from tests.builders import PARTNER_SECRETS, make_order
from tests.conftest import create_schema
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, signed_in_client
from tests.integration.test_support import audit_rows, csrf
from webapp.__main__ import main
from webapp.auth.models import User
from webapp.db import make_engine, make_sessionmaker
from webapp.embed.models import Partner, WebhookEvent
from webapp.embed.partners import PartnerSecrets
from webapp.secretbox import SealError, SecretBox

FORM = {
    "slug": "acme",
    "name": "Acme Wallet",
    "origins": "https://wallet.acme.example\nhttps://m.acme.example",
    "return_urls": "https://wallet.acme.example/back",
    "token_alg": "HS256",
    "token_key": "",
    "webhook_url": "https://api.acme.example/hooks",
    "logo_url": "",
    "primary_color": "#0b57d0",
    "theme_mode": "light",
}


# Who may reach the partner pages: tests/integration/test_authorisation.py.


async def test_an_admin_adds_a_partner_sees_its_secrets_once_and_every_action_is_audited(
    live_app: LiveApp, db: Db
) -> None:
    admin = await signed_in_client(live_app, "admin@example.com")
    refused = await admin.post("/admin/partners/", data=FORM | {"primary_color": "#ffff00"}, headers=csrf(admin))
    assert refused.status_code == 422 and "contrast" in refused.text
    unsafe = await admin.post("/admin/partners/", data=FORM | {"origins": "http://evil.example"}, headers=csrf(admin))
    assert unsafe.status_code == 422 and "https" in unsafe.text

    added = await admin.post("/admin/partners/", data=FORM, headers=csrf(admin))
    assert added.status_code == 200
    secret = re.search(r"<code>(whsec_[^<]+)</code>", added.text).group(1)
    assert re.search(r"<code>launch_[^<]+</code>", added.text)
    detail = await admin.get("/admin/partners/acme")
    assert "https://m.acme.example" in detail.text and secret not in detail.text  # shown once only

    await admin.post("/admin/partners/acme/enabled", data={"enabled": "0"}, headers=csrf(admin))
    rotated = await admin.post("/admin/partners/acme/rotate/webhook", headers=csrf(admin))
    new_secret = re.search(r"<code>(whsec_[^<]+)</code>", rotated.text).group(1)
    assert "The previous webhook secret still signs until" in rotated.text
    launch = re.search(r"<code>(launch_[^<]+)</code>", added.text).group(1)
    rotated_launch = await admin.post("/admin/partners/acme/rotate/launch", headers=csrf(admin))
    new_launch = re.search(r"<code>(launch_[^<]+)</code>", rotated_launch.text).group(1)
    assert "whsec_" not in rotated_launch.text and "Launch tokens made with the previous key" in rotated_launch.text
    async with db.sessionmaker() as session:
        partner = (await session.exec(select(Partner))).one()
    assert partner.enabled is False and new_secret != secret and new_launch != launch
    assert PARTNER_SECRETS.webhook_secrets(partner) == [new_secret, secret]  # both sign while the grace lasts
    assert [PARTNER_SECRETS.box.open(key) for key in (partner.token_key, partner.previous_token_key)] == [
        new_launch,
        launch,
    ]
    stored = " ".join(str(value) for value in partner.model_dump().values())
    assert not any(plain in stored for plain in (secret, new_secret, launch, new_launch))  # sealed at rest
    async with db.sessionmaker() as session, session.begin():  # support sees which partner placed an order
        user = User(issuer="partner:acme", subject="wallet-9", email="w9@example.com")
        session.add(user)
        await session.flush()
        order = make_order(
            user_id=user.id,
            email=user.email,
            partner_id=partner.id,
            partner_user_id="wallet-9",
            partner_reference="wd-9",
        )
        session.add(order)
        await session.flush()
        event = WebhookEvent(
            event_id="evt_given_up", partner_id=partner.id, order_id=order.id, type="order.failed", payload="{}"
        )
        event.state, event.attempts = "gave_up", 30
        session.add(event)
    log = await admin.get("/admin/partners/acme")
    assert "evt_given_up" in log.text and "gave_up" in log.text
    before = datetime.now(UTC)
    resent = await admin.post("/admin/partners/acme/events/evt_given_up/resend", headers=csrf(admin))
    assert (resent.status_code, resent.headers["location"]) == (303, "/admin/partners/acme")
    async with db.sessionmaker() as session:
        again = (await session.exec(select(WebhookEvent))).one()
    assert again.state == "pending" and again.next_attempt_at >= before  # due now: the next round sends it
    missing = await admin.post("/admin/partners/acme/events/evt_nope/resend", headers=csrf(admin))
    assert missing.status_code == 404
    support_page = await admin.get(f"/support/orders/{order.external_order_id}")
    assert "Through partner" in support_page.text and "Acme Wallet" in support_page.text
    assert "wallet-9" in support_page.text and "their reference wd-9" in support_page.text
    actions = [row.action for row in await audit_rows(db)]
    assert actions == [
        "partner_saved",
        "partner_disabled",
        "partner_secret_rotated",
        "partner_launch_rotated",
        "webhook_resent",
    ]
    assert all(row.actor == "admin@example.com" for row in await audit_rows(db))


def test_partners_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(create_schema(url))
    monkeypatch.setenv("DATABASE_URL", url)
    args = ["partners", "add", "acme", "--name", "Acme", "--origin", "https://wallet.acme.example"]
    assert main(args) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["webhook_secret"].startswith("whsec_") and added["launch_token_secret"].startswith("launch_")
    assert main(["partners", "show", "acme"]) == 0
    shown = capsys.readouterr().out
    assert "whsec_" not in shown and "launch_" not in shown and '"enabled": true' in shown
    assert main(["partners", "disable", "acme"]) == 0
    assert '"enabled": false' in capsys.readouterr().out
    assert main(["partners", "rotate-secret", "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["webhook_secret"] != added["webhook_secret"]
    assert main(["partners", "rotate-launch-secret", "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["launch_token_secret"] != added["launch_token_secret"]
    assert (
        main(["partners", "add", "bad", "--name", "B", "--origin", "https://b.example", "--primary-color", "#fff"]) == 2
    )
    assert main(["partners", "show", "nobody"]) == 1
    assert main(["partners", "list"]) == 0
    assert capsys.readouterr().out.count("\n") >= 1


def test_secrets_reencrypt_seals_every_partner_secret_with_the_newest_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A rotation of SECRETS_KEY: the new key first, the old one after it, re-encrypt, then the old key can go."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    asyncio.run(create_schema(url))
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRETS_KEY", old_key)
    assert main(["partners", "add", "acme", "--name", "Acme", "--origin", "https://wallet.acme.example"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert main(["partners", "rotate-secret", "acme"]) == 0
    rotated = json.loads(capsys.readouterr().out)["webhook_secret"]
    monkeypatch.setenv("SECRETS_KEY", f"{new_key},{old_key}")
    assert main(["secrets", "reencrypt"]) == 0
    assert "1 partners" in capsys.readouterr().out

    async def stored() -> Partner:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            partner = (await session.exec(select(Partner))).one()
        await engine.dispose()
        return partner

    partner = asyncio.run(stored())
    only_new = PartnerSecrets(SecretBox([new_key]))
    assert only_new.webhook_secrets(partner) == [rotated, added["webhook_secret"]]
    assert only_new.launch_key(partner) == added["launch_token_secret"]
    with pytest.raises(SealError):
        PartnerSecrets(SecretBox([old_key])).launch_key(partner)  # the old key opens nothing any more


def test_the_command_line_adds_once_updates_only_what_it_is_given_and_names_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    state_dir = tmp_path / "stack"
    state_dir.mkdir()
    url = f"sqlite+aiosqlite:///{state_dir / 'app.db'}"  # where `dev --state-dir` keeps the app's database
    asyncio.run(create_schema(url))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    partners = ["partners", "--state-dir", str(state_dir)]
    origins = ["--origin", "https://wallet.acme.example", "--origin", "https://m.acme.example"]
    add = [*partners, "add", "acme", "--name", "Acme", *origins, "--return-url", "https://wallet.acme.example/back"]
    assert main([*add, "--webhook-url", "https://acme.example/hooks"]) == 0
    added = capsys.readouterr()
    assert str(state_dir / "app.db") in added.err  # it says which database it used
    assert main([*add]) == 2  # the same slug again: refused, nothing wiped
    assert "partners update acme" in capsys.readouterr().out
    assert main([*partners, "update", "acme", "--logo-url", "https://acme.example/logo.png"]) == 0
    updated = json.loads(capsys.readouterr().out)
    assert updated["webhook_url"] == "https://acme.example/hooks" and updated["name"] == "Acme"
    assert updated["return_urls"] == ["https://wallet.acme.example/back"]
    assert updated["allowed_origins"] == ["https://wallet.acme.example", "https://m.acme.example"]  # as registered
    assert updated["logo_url"] == "https://acme.example/logo.png"
    assert "webhook_secret" not in updated and "launch_token_secret" not in updated  # secrets stay as they were
    assert main([*partners, "update", "nobody", "--name", "N"]) == 1
    capsys.readouterr()
    assert main([*partners, "update", "acme", "--token-alg", "EdDSA"]) == 2  # no key: the secret never becomes one
    assert "--public-key-file" in capsys.readouterr().out
