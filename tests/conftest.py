"""Shared fixtures: settings on a temporary SQLite file, a fresh app per test, real RSA keys made once a session."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlmodel import SQLModel

import webapp.schema  # noqa: F401  (every table on the metadata)
from webapp.alixpay.keys import generate_key_pair
from webapp.app import create_app
from webapp.config import AlixPaySettings, DatabaseSettings, Settings
from webapp.db import make_engine
from webapp.schema import head_revision

VECTORS_DIR = Path(__file__).parent / "vectors"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


@dataclass(frozen=True)
class RsaKeys:
    partner: KeyPair
    alix: KeyPair
    other: KeyPair  # a stranger's key, for "signed with the wrong key" cases


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> RsaKeys:
    return make_rsa_keys(tmp_path_factory.mktemp("keys"))


def make_rsa_keys(directory: Path) -> RsaKeys:
    """Fresh key pairs in `directory` (the benchmarks make theirs outside pytest)."""
    pairs = {}
    for name in ("partner", "alix", "other"):
        pairs[name] = KeyPair(directory / f"{name}_private.pem", directory / f"{name}_public.pem")
        generate_key_pair(pairs[name].private, pairs[name].public)
    return RsaKeys(**pairs)


def keyed_settings(database_url: str, rsa_keys: RsaKeys) -> Settings:
    """Settings on `database_url` that sign with our test key and trust Alix Pay's."""
    return Settings(
        database=DatabaseSettings(url=database_url),
        alixpay=AlixPaySettings(private_key_file=rsa_keys.partner.private, public_key_files=[rsa_keys.alix.public]),
    )


@pytest.fixture
def settings(tmp_path: Path, rsa_keys: RsaKeys) -> Settings:
    return keyed_settings(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", rsa_keys)


async def create_schema(url: str) -> None:
    """Every table, stamped with the newest migration (test_migrations shows the two schemas are the same)."""
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        )
        await connection.execute(text("DELETE FROM alembic_version"))
        await connection.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": head_revision()})
    await engine.dispose()


@pytest.fixture
async def app(settings: Settings) -> Litestar:
    await create_schema(settings.database.url)
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client
