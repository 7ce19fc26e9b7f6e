"""`alembic upgrade head` then `alembic check` on SQLite and on the PostgreSQL server of this machine (CI too)."""

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.integration.conftest import new_postgres_database
from webapp.secretbox import SecretBox

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


def test_partner_secrets_stored_in_plain_text_are_sealed_by_the_migration_and_opened_by_its_downgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "partners.db"
    url = f"sqlite+aiosqlite:///{database}"
    key = Fernet.generate_key().decode()
    before = alembic("upgrade", "d4f346bbe864", database_url=url)
    assert before.returncode == 0, before.stderr
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO partner (slug, name, allowed_origins, return_urls, primary_color, theme_mode, token_alg,"
            " token_key, webhook_secret, enabled, created_at, updated_at) VALUES ('acme', 'Acme', '[]', '[]',"
            " '#0b57d0', 'light', 'HS256', 'launch_plain', 'whsec_plain', 1, '2026-12-05', '2026-12-05')"
        )
    monkeypatch.setenv("SECRETS_KEY", key)
    upgraded = alembic("upgrade", "8db18a99cad8", database_url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    with sqlite3.connect(database) as connection:
        launch, webhook = connection.execute("SELECT token_key, webhook_secret FROM partner").fetchone()
    box = SecretBox([key])
    assert "plain" not in launch + webhook and (box.open(launch), box.open(webhook)) == (
        "launch_plain",
        "whsec_plain",
    )
    downgraded = alembic("downgrade", "d4f346bbe864", database_url=url)
    assert downgraded.returncode == 0, downgraded.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT token_key, webhook_secret FROM partner").fetchone() == (
            "launch_plain",
            "whsec_plain",
        )
