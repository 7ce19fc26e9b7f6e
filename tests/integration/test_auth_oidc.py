"""Sign-in against a real oidc-provider-mock over HTTP, every failure path, roles and session rotation."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import create_schema
from tests.oidc_support import Idp, TamperingProxy
from webapp.app import create_app
from webapp.auth.guards import requires_admin, requires_support, requires_user
from webapp.auth.models import User
from webapp.auth.oidc import s256
from webapp.config import OIDCSettings, Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.sessions import HttpSession

APP_ORIGIN = "http://testserver.local"


async def go_to_idp(client: AsyncTestClient[Litestar], next_path: str = "/") -> str:
    start = await client.get("/login", params={"next": next_path}, follow_redirects=False)
    assert start.status_code in (302, 303), start.text
    return start.headers["location"]


def authorize_at_idp(authorize_url: str, email: str) -> str:
    """What the person does at the IdP's page: choose an account. Returns our callback path with its query."""
    answer = httpx.post(authorize_url, data={"sub": email}, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{APP_ORIGIN}/auth/callback?")
    return location.removeprefix(APP_ORIGIN)


async def sign_in(client: AsyncTestClient[Litestar], email: str, next_path: str = "/") -> httpx.Response:
    callback = authorize_at_idp(await go_to_idp(client, next_path), email)
    return await client.get(callback, follow_redirects=False)


async def count(settings: Settings, model: type) -> int:
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session:
        total = (await session.exec(select(func.count()).select_from(model))).one()
    await engine.dispose()
    return total


async def test_whole_flow_signs_in_shows_email_and_signs_out(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings, idp: Idp
) -> None:
    done = await sign_in(oidc_client, "user@example.com", next_path="/system-status")
    assert done.status_code in (302, 303)
    assert done.headers["location"] == "/system-status"
    home = await oidc_client.get("/")
    assert "Signed in as user@example.com" in home.text
    assert await count(oidc_settings, User) == 1

    engine = make_engine(oidc_settings.database.url)
    async with make_sessionmaker(engine)() as session:
        user = (await session.exec(select(User))).one()
    await engine.dispose()
    assert (user.issuer, user.subject, user.email) == (idp.url, "user@example.com", "user@example.com")
    assert user.first_login_at == user.last_login_at

    out = await oidc_client.post(
        "/logout", headers={"x-csrftoken": oidc_client.cookies["csrftoken"]}, follow_redirects=False
    )
    assert out.status_code == 303
    end_session = urlsplit(out.headers["location"])
    assert f"{end_session.scheme}://{end_session.netloc}" == idp.url  # RP-initiated logout at the IdP
    assert "id_token_hint" in parse_qs(end_session.query)
    after = await oidc_client.get("/")
    assert "Signed in as" not in after.text
    assert await count(oidc_settings, HttpSession) == 0


async def test_second_sign_in_updates_last_login(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings
) -> None:
    await sign_in(oidc_client, "user@example.com")
    oidc_client.cookies.clear()
    await sign_in(oidc_client, "user@example.com")
    engine = make_engine(oidc_settings.database.url)
    async with make_sessionmaker(engine)() as session:
        users = (await session.exec(select(User))).all()
    await engine.dispose()
    assert len(users) == 1
    assert users[0].last_login_at > users[0].first_login_at


async def test_sign_ins_reuse_the_apps_connections_to_the_idp(
    oidc_client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in sets up no HTTP client (TLS context, connection pool) of its own: the app keeps two for the IdP."""
    await sign_in(oidc_client, "user@example.com")
    made: list[str] = []
    original = httpx.AsyncClient.__init__

    def counting(client: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        made.append(type(client).__name__)
        original(client, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
    oidc_client.cookies.clear()
    done = await sign_in(oidc_client, "admin@example.com")
    assert done.status_code in (302, 303) and "Signed in as admin@example.com" in (await oidc_client.get("/")).text
    assert made == []


async def test_an_anonymous_sign_in_writes_no_session_until_it_succeeds(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings
) -> None:
    authorize_url = await go_to_idp(oidc_client)
    assert "session" not in oidc_client.cookies and oidc_client.cookies["signin"]  # sealed, in the browser
    assert await count(oidc_settings, HttpSession) == 0
    await oidc_client.get(authorize_at_idp(authorize_url, "user@example.com"), follow_redirects=False)
    assert oidc_client.cookies["session"] and "signin" not in oidc_client.cookies
    assert await count(oidc_settings, HttpSession) == 1


async def test_a_planted_session_id_is_never_adopted_at_sign_in(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings
) -> None:
    planted = "attacker-chosen-session-id"
    oidc_client.cookies.set("session", planted)
    authorize_url = await go_to_idp(oidc_client)
    signed_in = await oidc_client.get(authorize_at_idp(authorize_url, "user@example.com"), follow_redirects=False)
    assert signed_in.cookies["session"] not in ("", planted)  # a fresh id of the server's making
    assert await count(oidc_settings, HttpSession) == 1


async def test_a_sign_in_cookie_that_was_tampered_with_changes_nothing(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings
) -> None:
    authorize_url = await go_to_idp(oidc_client)
    sealed = oidc_client.cookies["signin"]
    oidc_client.cookies.set("signin", sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
    answer = await oidc_client.get(authorize_at_idp(authorize_url, "user@example.com"), follow_redirects=False)
    assert answer.status_code == 400 and "session" not in oidc_client.cookies
    assert await count(oidc_settings, HttpSession) == 0


async def test_pkce_s256_is_sent_and_matches_the_verifier(
    oidc_client: AsyncTestClient[Litestar], idp_proxy: TamperingProxy
) -> None:
    authorize_url = await go_to_idp(oidc_client)
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["openid email profile"]
    assert query["nonce"][0] and query["state"][0]
    await oidc_client.get(authorize_at_idp(authorize_url, "user@example.com"), follow_redirects=False)
    verifier = idp_proxy.token_requests[-1]["code_verifier"][0]
    assert len(verifier) >= 43
    assert s256(verifier) == query["code_challenge"][0]


FAILURES = {
    "token_500": ("We could not reach the sign-in service.", 502),
    "bad_signature": ("We could not confirm who you are.", 400),
    "wrong_iss": ("We could not confirm who you are.", 400),
    "wrong_aud": ("We could not confirm who you are.", 400),
    "expired": ("We could not confirm who you are.", 400),
    "wrong_nonce": ("We could not confirm who you are.", 400),
}


@pytest.mark.parametrize("mode", list(FAILURES))
async def test_misbehaving_idp_is_refused_and_changes_nothing(
    oidc_client: AsyncTestClient[Litestar],
    oidc_settings: Settings,
    idp_proxy: TamperingProxy,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    authorize_url = await go_to_idp(oidc_client)
    idp_proxy.mode = mode
    page = await oidc_client.get(authorize_at_idp(authorize_url, "user@example.com"), follow_redirects=False)
    message, status = FAILURES[mode]
    assert page.status_code == status
    assert message in page.text
    assert "Signed in as" not in page.text
    assert await count(oidc_settings, User) == 0
    assert await count(oidc_settings, HttpSession) == 0
    assert "sign-in failed" in caplog.text
    assert "eyJ" not in caplog.text  # no token (JWTs start with eyJ) in any log line


async def test_rotated_idp_key_is_fetched_again(
    oidc_client: AsyncTestClient[Litestar], idp_proxy: TamperingProxy
) -> None:
    await sign_in(oidc_client, "user@example.com")  # caches the JWKS
    fetches = idp_proxy.jwks_fetches
    oidc_client.cookies.clear()
    idp_proxy.mode = "new_key"  # the IdP now signs with a key our cache has never seen
    done = await sign_in(oidc_client, "user@example.com")
    assert done.status_code in (302, 303)
    assert idp_proxy.jwks_fetches == fetches + 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"error": "access_denied"}, "did not let you in"),
        ({"code": "whatever"}, "expired or was already used"),  # no state
        ({"code": "whatever", "state": "forged"}, "expired or was already used"),
        ({"state": "<the real one>"}, "expired or was already used"),  # the code is missing
    ],
    ids=["idp_error", "no_state", "state_mismatch", "missing_code"],
)
async def test_bad_callback_is_refused_and_changes_nothing(
    oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings, query: dict[str, str], message: str
) -> None:
    authorize_url = await go_to_idp(oidc_client)
    if query.get("state") == "<the real one>":
        query = {"state": parse_qs(urlsplit(authorize_url).query)["state"][0]}
    page = await oidc_client.get("/auth/callback", params=query, follow_redirects=False)
    assert page.status_code == 400
    assert message in page.text
    assert await count(oidc_settings, User) == 0
    assert await count(oidc_settings, HttpSession) == 0


async def test_replayed_callback_is_refused(oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings) -> None:
    callback = authorize_at_idp(await go_to_idp(oidc_client), "user@example.com")
    first = await oidc_client.get(callback, follow_redirects=False)
    assert first.status_code in (302, 303)
    oidc_client.cookies.clear()  # an attacker's browser with the stolen URL
    replay = await oidc_client.get(callback, follow_redirects=False)
    assert replay.status_code == 400
    assert "expired or was already used" in replay.text
    assert "Signed in as" not in (await oidc_client.get("/")).text


async def test_unverified_email_is_refused(oidc_client: AsyncTestClient[Litestar], oidc_settings: Settings) -> None:
    page = await sign_in(oidc_client, "unverified@example.com")
    assert page.status_code == 403
    assert "not verified" in page.text
    assert await count(oidc_settings, User) == 0


async def test_unreachable_idp_is_a_friendly_page(settings: Settings) -> None:
    from webapp.dev.stack import free_port

    unreachable = settings.model_copy(
        update={"oidc": OIDCSettings(discovery_url=f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration")}
    )
    await create_schema(unreachable.database.url)
    async with AsyncTestClient(app=create_app(unreachable)) as client:
        page = await client.get("/login", params={"lang": "vi"}, follow_redirects=False)
    assert page.status_code == 502
    assert "Không thể kết nối đến dịch vụ đăng nhập" in page.text
    assert await count(unreachable, HttpSession) == 0


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
async def test_next_that_leaves_the_site_is_ignored(oidc_client: AsyncTestClient[Litestar], target: str) -> None:
    done = await sign_in(oidc_client, "user@example.com", next_path=target)
    assert done.headers["location"] == "/"


@get("/test/mine", guards=[requires_user], name="test.mine")
async def mine() -> str:
    return "mine"


@get("/test/support", guards=[requires_support], name="test.support")
async def support_only() -> str:
    return "support desk"


@get("/test/admin", guards=[requires_admin], name="test.admin")
async def admin_only() -> str:
    return "admin desk"


@pytest.fixture
async def guarded_client(oidc_settings: Settings):
    await create_schema(oidc_settings.database.url)
    app = create_app(oidc_settings)
    for handler in (mine, support_only, admin_only):
        app.register(handler)
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_anonymous_visitor_is_sent_to_sign_in_and_back(guarded_client: AsyncTestClient[Litestar]) -> None:
    answer = await guarded_client.get("/test/support?tab=open", follow_redirects=False)
    assert answer.status_code == 303
    login = urlsplit(answer.headers["location"])
    assert login.path == "/login"
    assert parse_qs(login.query)["next"] == ["/test/support?tab=open"]
    htmx = await guarded_client.get("/test/mine", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/login?next=")


async def test_user_gets_403_on_support_pages(guarded_client: AsyncTestClient[Litestar]) -> None:
    await sign_in(guarded_client, "user@example.com")
    assert (await guarded_client.get("/test/mine")).text == "mine"
    denied = await guarded_client.get("/test/support")
    assert denied.status_code == 403
    assert "Access denied" in denied.text


async def test_support_role_from_the_groups_claim_is_allowed(guarded_client: AsyncTestClient[Litestar]) -> None:
    done = await sign_in(guarded_client, "support@example.com", next_path="/test/support")
    assert done.headers["location"] == "/test/support"
    assert (await guarded_client.get("/test/support")).text == "support desk"
    assert (await guarded_client.get("/test/admin")).status_code == 403


async def test_admin_emails_setting_grants_admin(oidc_settings: Settings) -> None:
    admin_settings = oidc_settings.model_copy(update={"admin_emails": ["user@example.com"]})
    await create_schema(admin_settings.database.url)
    app = create_app(admin_settings)
    app.register(admin_only)
    async with AsyncTestClient(app=app) as client:
        await sign_in(client, "user@example.com")
        assert (await client.get("/test/admin")).text == "admin desk"
