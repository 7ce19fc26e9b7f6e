"""`alembic upgrade head` then `alembic check` on SQLite and on the PostgreSQL server of this machine (CI too)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import new_postgres_database

ROOT = Path(__file__).resolve().parents[2]


def alembic(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def assert_upgrade_and_check(database_url: str) -> None:
    upgraded = alembic("upgrade", "head", database_url=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = alembic("check", database_url=database_url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    downgraded = alembic("downgrade", "base", database_url=database_url)
    assert downgraded.returncode == 0, downgraded.stderr


def test_migrations_are_complete_on_sqlite(tmp_path: Path) -> None:
    assert_upgrade_and_check(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards. Fails (never skips) if it is down."""
    url, drop = new_postgres_database()
    try:
        yield url
    finally:
        drop()


def test_migrations_are_complete_on_postgresql(postgres_url: str) -> None:
    assert_upgrade_and_check(postgres_url)
