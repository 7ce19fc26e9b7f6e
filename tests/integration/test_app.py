import asyncio
import gc
import re
import warnings

import pytest
from babel import localedata
from litestar import Litestar, get, post
from litestar.testing import AsyncTestClient

from tests.conftest import create_schema
from webapp import i18n
from webapp.app import create_app, create_served_app
from webapp.config import DatabaseSettings, Environment, Settings

NOT_FOUND_TITLE = {"en": "Page not found", "vi": "Không tìm thấy trang", "zh": "页面未找到"}
SERVER_ERROR_TITLE = {"en": "Something went wrong", "vi": "Đã xảy ra lỗi", "zh": "出错了"}
HTML_LANG = {"en": "en", "vi": "vi", "zh": "zh-Hans"}


async def test_health_is_ok(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_answers(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_not_ready_when_database_is_unreachable(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"database": DatabaseSettings(url="postgresql+asyncpg://nobody@127.0.0.1:9/none")}
    )
    async with AsyncTestClient(app=create_app(unreachable)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
async def test_not_found_page_is_localised(client: AsyncTestClient[Litestar], locale: str) -> None:
    response = await client.get("/no/such/page", params={"lang": locale})
    assert response.status_code == 404
    assert f'<html lang="{HTML_LANG[locale]}">' in response.text
    assert NOT_FOUND_TITLE[locale] in response.text


@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
async def test_server_error_page_is_localised_and_hides_the_exception(
    settings: Settings, locale: str, caplog: pytest.LogCaptureFixture
) -> None:
    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    await create_schema(settings.database.url)
    app = create_app(settings)
    app.register(boom)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/boom", headers={"accept-language": f"{locale};q=0.9"})
    assert response.status_code == 500
    assert SERVER_ERROR_TITLE[locale] in response.text
    assert "secret internal detail" not in response.text
    assert "RuntimeError" not in response.text
    assert "secret internal detail" in caplog.text  # logged for operators, not shown to the person


async def test_htmx_request_gets_error_fragment(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/missing", headers={"hx-request": "true"})
    assert response.status_code == 404
    assert response.text.lstrip().startswith('<div id="error"')
    assert "<html" not in response.text


async def test_csp_nonce_differs_per_request_and_matches_the_script_tags(client: AsyncTestClient[Litestar]) -> None:
    nonces = []
    for _ in range(2):
        response = await client.get("/")
        policy = response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy
        assert "'unsafe-eval'" not in policy
        assert "frame-ancestors 'none'" in policy
        nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", policy).group(1)
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert len(scripts) == 3
        assert all(f'nonce="{nonce}"' in tag for tag in scripts)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


async def test_a_response_without_a_page_gets_a_policy_without_a_nonce(client: AsyncTestClient[Litestar]) -> None:
    policy = (await client.get("/healthz")).headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "nonce-" not in policy


async def test_security_headers_on_every_response(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/", "/healthz", "/nope", "/static/css/app.css"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_csrf_blocks_a_post_without_the_token(settings: Settings) -> None:
    @post("/echo")
    async def echo() -> str:
        return "accepted"

    await create_schema(settings.database.url)
    app = create_app(settings)
    app.register(echo)
    async with AsyncTestClient(app=app) as client:
        page = await client.get("/")
        assert page.status_code == 200
        refused = await client.post("/echo")
        assert refused.status_code == 403
        assert "Access denied" in refused.text
        token = client.cookies["csrftoken"]
        assert token in page.text  # the page carries it for htmx's hx-headers
        accepted = await client.post("/echo", headers={"x-csrftoken": token})
        assert accepted.status_code == 201
        assert accepted.text == "accepted"


async def test_language_choice_is_remembered_in_a_cookie(client: AsyncTestClient[Litestar]) -> None:
    first = await client.get("/", params={"lang": "vi"})
    assert "Rút USDT về tài khoản ngân hàng Việt Nam" in first.text
    assert client.cookies["lang"] == "vi"
    again = await client.get("/", headers={"accept-language": "zh"})
    assert '<html lang="vi">' in again.text


async def test_system_status_fragment_answers_htmx(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/system-status", headers={"hx-request": "true", "accept-language": "vi"})
    assert response.status_code == 200
    assert 'id="system-status"' in response.text
    assert "Mọi hệ thống đang hoạt động bình thường." in response.text


async def test_ipn_needs_no_csrf_token_but_other_posts_do(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.post("/ipn/alixpay", content=b"{}")).status_code == 400  # reached the receiver
    assert (await client.post("/logout")).status_code == 403


@pytest.mark.parametrize("production", [False, True])
async def test_hsts_and_the_api_schema_depend_on_the_environment(settings: Settings, production: bool) -> None:
    """Production answers with HSTS and keeps its API schema to itself; development has no HSTS to forget."""
    environment = Environment.PRODUCTION if production else Environment.DEVELOPMENT
    settings = settings.model_copy(update={"environment": environment})
    await create_schema(settings.database.url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        for path in ("/", "/healthz", "/nope"):
            answer = await client.get(path)
            assert ("strict-transport-security" in answer.headers) is production, path
        if production:
            assert answer.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        schema = await client.get("/schema/openapi.json")
        assert schema.status_code == (404 if production else 200)


async def test_a_served_app_reads_every_language_and_freezes_what_it_built_before_serving(settings: Settings) -> None:
    gc.unfreeze()
    i18n.translations.cache_clear()
    localedata._cache.clear()  # Babel's own cache of locale data: what the first page in a language would fill
    try:
        async with AsyncTestClient(app=create_app(settings)):
            assert gc.get_freeze_count() == 0  # tests build many apps: only a server process freezes its heap
            assert not localedata._cache
        async with AsyncTestClient(app=create_served_app(settings)):
            assert gc.get_freeze_count() > 0
            assert set(i18n.BABEL_LOCALES.values()) <= set(localedata._cache)
            assert i18n.translations.cache_info().currsize == len(i18n.LOCALES)
    finally:
        gc.unfreeze()


async def test_stopping_mid_round_leaves_no_database_connection_behind(settings: Settings) -> None:
    """Jobs finish the round under way when the app stops: one cut in the middle of a statement would leave its
    SQLite connection to the garbage collector (SQLAlchemy warns; here, an error)."""
    await create_schema(settings.database.url)
    busy = settings.model_copy(
        update={
            name: 0.001
            for name in (
                "reconcile_interval_seconds",
                "ipn_replay_interval_seconds",
                "cleanup_interval_seconds",
                "alarm_interval_seconds",
                "webhook_interval_seconds",
            )
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for attempt in range(30):
            async with AsyncTestClient(app=create_app(busy)):
                await asyncio.sleep(0.05 + (attempt % 7) * 0.013)  # stopped at a different point of the rounds
            gc.collect()
