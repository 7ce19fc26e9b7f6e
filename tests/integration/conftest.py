"""Real peers for integration tests: the Alix Pay sandbox as a server process and an IPN receiver on loopback."""

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import select

from tests.builders import make_order
from tests.conftest import RsaKeys, create_schema, keyed_settings
from tests.integration.ipn_bodies import EXTERNAL_ID
from tests.oidc_support import Idp, TamperingProxy, running_idp, running_proxy
from tests.processes import IpnReceiver, SandboxServer, running_process, running_receiver, running_sandbox, serving
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier
from webapp.app import create_app
from webapp.auth.models import User
from webapp.config import AlixPaySettings, DatabaseSettings, OIDCSettings, Settings
from webapp.db import Database, make_engine, make_sessionmaker
from webapp.dev.stack import free_port
from webapp.orders.transitions import StatusChanges
from webapp.services import build_services

PARTNER_CODE = "testpartner"
SANDBOX_SECRET = f"sk_test_{secrets.token_hex(8)}"


def sandbox_env(rsa_keys: RsaKeys, directory: Path, ipn_url: str, **settings: str) -> dict[str, str]:
    """The environment of a test sandbox: our partner code, secret and keys, its own database file."""
    env = {
        "SANDBOX_PARTNER_CODE": PARTNER_CODE,
        "SANDBOX_SECRET_KEY": SANDBOX_SECRET,
        "SANDBOX_PARTNER_PUBLIC_KEY_FILE": str(rsa_keys.partner.public),
        "SANDBOX_PRIVATE_KEY_FILE": str(rsa_keys.alix.private),
        "SANDBOX_IPN_URL": ipn_url,
        "SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'sandbox.db'}",
        "SANDBOX_TICK_SECONDS": "0.05",
    }
    return env | {f"SANDBOX_{name}": value for name, value in settings.items()}


@pytest.fixture(scope="session")
def ipn_receiver() -> Iterator[IpnReceiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def sandbox_server(
    rsa_keys: RsaKeys, ipn_receiver: IpnReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxServer]:
    directory = tmp_path_factory.mktemp("sandbox")
    env = sandbox_env(
        rsa_keys,
        directory,
        ipn_receiver.url,
        SPEED="0.3",
        RETRY_BASE_SECONDS="0.2",
        MAX_ATTEMPTS="4",
        EXPIRY_SECONDS="1.5",
    )
    with running_sandbox(env, directory / "sandbox.log") as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The shared sandbox with no faults set."""
    sandbox_server.set_faults()
    return sandbox_server


def make_client(
    sandbox: SandboxServer, rsa_keys: RsaKeys, *, signer: Signer | None = None, **overrides: object
) -> AlixPayClient:
    options: dict[str, object] = {
        "base_url": sandbox.url,
        "partner_code": PARTNER_CODE,
        "secret_key": SANDBOX_SECRET,
        "webhook_secret_key": "whsk_test",
        "signer": signer or Signer.from_file(rsa_keys.partner.private),
        "verifier": Verifier.from_files([rsa_keys.alix.public]),
        "timeout": 5.0,
    }
    options.update(overrides)
    return AlixPayClient(**options)  # type: ignore[arg-type]


@pytest.fixture
async def alix_client(sandbox: SandboxServer, rsa_keys: RsaKeys) -> AsyncIterator[AlixPayClient]:
    client = make_client(sandbox, rsa_keys)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    with running_idp(tmp_path_factory.mktemp("idp") / "idp.log") as server:
        yield server


@pytest.fixture(scope="session")
def idp_proxy(idp: Idp) -> Iterator[TamperingProxy]:
    with running_proxy(idp) as proxy:
        yield proxy


@pytest.fixture
def oidc_settings(settings: Settings, idp_proxy: TamperingProxy) -> Settings:
    """The app pointed at the real IdP (through the proxy, in pass-through mode unless a test says otherwise)."""
    idp_proxy.mode = "pass"
    idp_proxy.token_requests.clear()
    return settings.model_copy(
        update={
            "public_base_url": "http://testserver.local",
            "oidc": OIDCSettings(discovery_url=idp_proxy.discovery_url, client_id="cashout-test", timeout_seconds=5),
        }
    )


@pytest.fixture
async def oidc_client(oidc_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    await create_schema(oidc_settings.database.url)
    async with AsyncTestClient(app=create_app(oidc_settings)) as client:
        yield client


POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def app_sandbox(rsa_keys: RsaKeys, app_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox whose IPNs go to the live app of each test (always on `app_port`)."""
    directory = tmp_path_factory.mktemp("app-sandbox")
    ipn_url = f"http://127.0.0.1:{app_port}/ipn/alixpay"
    env = sandbox_env(rsa_keys, directory, ipn_url, SPEED="0.4", RETRY_BASE_SECONDS="0.3", MAX_ATTEMPTS="3")
    with running_sandbox(env, directory / "sandbox.log") as server:
        yield server


def libpq_url(database_url: str) -> str:
    """A database URL of the app (`postgresql+asyncpg://…`) as libpq takes it: pg_dump, pg_restore, asyncpg itself."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def new_postgres_database(*, copy_of: str | None = None) -> tuple[str, Callable[[], None]]:
    """A fresh database on the local PostgreSQL server (or a copy of the database at `copy_of`, which nobody may be
    connected to) and a function that drops it."""
    name = f"webapp_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    template = f' TEMPLATE "{copy_of.rsplit("/", 1)[1]}"' if copy_of else ""
    asyncio.run(admin(f'CREATE DATABASE "{name}"{template}'))
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", lambda: asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


NO_ALIX_PAY = "http://127.0.0.1:9"
"""Nothing listens there: for app processes whose IPNs come from the test itself."""


def app_env(
    database_url: str, rsa_keys: RsaKeys, *, idp: Idp | None = None, alixpay_url: str = NO_ALIX_PAY, **settings: str
) -> dict[str, str]:
    """The environment of an app process (`python -m webapp serve`): its database, the test keys, Alix Pay, the
    IdP if it signs people in, reconciliation out of the way, and any other setting by its lower-case name."""
    env = {
        "DATABASE_URL": database_url,
        "ALIXPAY_PRIVATE_KEY_FILE": str(rsa_keys.partner.private),
        "ALIXPAY_PUBLIC_KEY_FILES": str(rsa_keys.alix.public),
        "ALIXPAY_BASE_URL": alixpay_url,
        "RECONCILE_INTERVAL_SECONDS": "3600",
    }
    if idp is not None:
        env |= {"OIDC_DISCOVERY_URL": f"{idp.url}/.well-known/openid-configuration", "OIDC_CLIENT_ID": "cashout-tests"}
    return env | {name.upper(): value for name, value in settings.items()}


async def seed_orders(database_url: str, email: str, count: int) -> list[str]:
    """`count` orders awaiting payment for the person with `email` (signed up if need be); their external ids."""
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session, session.begin():
        user = (await session.exec(select(User).where(User.email == email))).first()
        if user is None:
            user = User(issuer="https://idp", subject=email, email=email)
            session.add(user)
            await session.flush()
        orders = [make_order(user_id=user.id, email=email) for _ in range(count)]
        session.add_all(orders)
    await engine.dispose()
    return [order.external_order_id for order in orders]


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite by default; tests that must also run on PostgreSQL parametrise this with `both_databases`."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
        return
    url, drop = new_postgres_database()
    try:
        yield url
    finally:
        drop()


both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@dataclass
class LiveApp:
    url: str
    settings: Settings
    sandbox: SandboxServer
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        """A browser-like client; every one is closed when the test ends, even a failing one."""
        self.clients.append(httpx.AsyncClient(base_url=self.url, timeout=20))
        return self.clients[-1]


def live_settings(
    *, port: int, database_url: str, sandbox: SandboxServer, rsa_keys: RsaKeys, idp: Idp, **alixpay: object
) -> Settings:
    """An app on loopback `port`, wired to `sandbox` and the real IdP, with short job intervals for tests."""
    options = {
        "base_url": sandbox.url,
        "partner_code": PARTNER_CODE,
        "secret_key": SANDBOX_SECRET,
        "private_key_file": rsa_keys.partner.private,
        "public_key_files": [rsa_keys.alix.public],
        "timeout_seconds": 1.5,
    }
    return Settings(
        public_base_url=f"http://127.0.0.1:{port}",
        database=DatabaseSettings(url=database_url),
        alixpay=AlixPaySettings(**(options | alixpay)),  # type: ignore[arg-type]
        oidc=OIDCSettings(discovery_url=f"{idp.url}/.well-known/openid-configuration", client_id="cashout-live"),
        reconcile_interval_seconds=0.3,
        reconcile_silence_seconds=2.0,
        ipn_replay_interval_seconds=0.3,
        ipn_replay_grace_seconds=1.0,
        cashout_min_vnd=10_000,
        ipn_allowed_sources=["127.0.0.1"],  # the sandbox is these tests' Alix Pay, as in the dev stack
    )


@contextlib.asynccontextmanager
async def serving_live_app(settings: Settings, port: int, sandbox: SandboxServer) -> AsyncIterator[LiveApp]:
    """The whole app as a real HTTP server on a fresh schema; every client a test opened is closed afterwards."""
    await create_schema(settings.database.url)
    async with serving(create_app(settings), port) as url:
        app = LiveApp(url, settings, sandbox)
        try:
            yield app
        finally:
            for client in app.clients:
                await client.aclose()


@pytest.fixture
async def live_app(
    database_url: str, rsa_keys: RsaKeys, app_port: int, app_sandbox: SandboxServer, idp: Idp
) -> AsyncIterator[LiveApp]:
    """The whole app as a real HTTP server, wired to the sandbox and the real IdP, on a fresh database."""
    app_sandbox.set_faults()
    settings = live_settings(port=app_port, database_url=database_url, sandbox=app_sandbox, rsa_keys=rsa_keys, idp=idp)
    async with serving_live_app(settings, app_port, app_sandbox) as app:
        yield app


@pytest.fixture
async def db(live_app: LiveApp) -> AsyncIterator[Any]:
    """The live app's database, read as support would (`tests.integration.flow.Db`)."""
    from tests.integration.flow import Db  # flow.py imports this module

    database = Db(live_app)
    yield database
    await database.close()


async def seed_order(settings: Settings) -> None:
    """One AWAITING_PAYMENT order of 100 000 VND with the id the signed bodies of `ipn_bodies.py` name."""
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session, session.begin():
        user = User(issuer="https://idp", subject="u1", email="u1@example.com")
        session.add(user)
        await session.flush()
        session.add(make_order(user_id=user.id, email=user.email, external_order_id=EXTERNAL_ID, submission_id="s1"))
    await engine.dispose()


@contextlib.asynccontextmanager
async def background_parts(settings: Settings) -> AsyncIterator[tuple[Database, StatusChanges, AlixPayClient]]:
    """What the background jobs work with, built by the composition root as the app builds it."""
    services = build_services(settings)
    try:
        yield services.db, services.changes, services.alixpay
    finally:
        await services.aclose()


@contextlib.asynccontextmanager
async def database_with_schema(url: str, *, pool_size: int = 5) -> AsyncIterator[Database]:
    """A `Database` on `url` with every table created, closed afterwards."""
    await create_schema(url)
    database = Database.connect(url, pool_size=pool_size)
    try:
        yield database
    finally:
        await database.close()


async def rows(settings: Settings, model: type) -> list:
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session:
        result = list((await session.exec(select(model))).all())
    await engine.dispose()
    return result


@pytest.fixture
async def seeded(settings: Settings, database_url: str) -> Settings:
    settings = settings.model_copy(update={"database": DatabaseSettings(url=database_url)})
    await create_schema(settings.database.url)
    await seed_order(settings)
    return settings


@dataclass
class Cluster:
    database_url: str
    settings: Settings
    env: dict[str, str]
    log_dir: Path

    @contextlib.contextmanager
    def instance(self, name: str, *, workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "webapp", "serve", "--port", str(port), "--workers", str(workers)]
        env = {**self.env, "PUBLIC_BASE_URL": url}
        with running_process(
            args, env=env, log_file=self.log_dir / f"{name}.log", ready_url=f"{url}/healthz", what=name
        ) as process:
            yield url, process


@pytest.fixture
async def cluster(database_url: str, rsa_keys: RsaKeys, idp: Idp, tmp_path: Path) -> Cluster:
    await create_schema(database_url)
    env = app_env(database_url, rsa_keys, idp=idp, ipn_replay_grace_seconds="1", ipn_replay_interval_seconds="0.3")
    return Cluster(database_url, keyed_settings(database_url, rsa_keys), {**os.environ, **env}, tmp_path)


@pytest.fixture
async def not_at_the_end_of_a_minute() -> None:
    """Rate-limit counts start again each clock minute: a test begun in its last seconds would see its count reset."""
    if time.time() % 60 > 50:
        await asyncio.sleep(61 - time.time() % 60)
