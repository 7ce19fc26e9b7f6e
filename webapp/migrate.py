"""Run Alembic migrations programmatically (`python -m webapp migrate`, and the dev stack before it starts)."""

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration this code ships (what a ready database must be at)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def upgrade(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")
