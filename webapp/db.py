"""Async database engine and sessions; SQLite (WAL, foreign keys) by default, PostgreSQL by `DATABASE_URL`."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from litestar.di import NamedDependency
from sqlalchemy import BigInteger, Insert, MetaData, event, literal
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

# Stable constraint names so Alembic can alter them later on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata

Sessionmaker: TypeAlias = NamedDependency[async_sessionmaker[AsyncSession]]
"""A handler parameter named `db_sessionmaker` gets the sessionmaker, for units of work of its own."""
DbSession: TypeAlias = NamedDependency[AsyncSession]
"""A handler parameter named `db_session` gets the request's session."""
DbReader: TypeAlias = NamedDependency[AsyncEngine]
"""A handler parameter named `db_reader` gets the `autocommit` engine, for reads that need no transaction."""


def utcnow() -> datetime:
    """Now, aware (every timestamp we store is UTC; SQLite and PostgreSQL both keep it so)."""
    return datetime.now(UTC)


def in_utc(moment: datetime) -> datetime:
    """A stored time, aware (SQLite hands some back without their zone: they are UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """`engine` for statements that stand alone: each commits by itself, no BEGIN, COMMIT or ROLLBACK round trips.

    For a read that needs no snapshot across statements, a single-row write, raw IPNs stored before anything else.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """An engine for `url`; on PostgreSQL a fixed pool without overflow and without a ping per checkout.

    SQL parameters (session data, IPN bodies, personal data) never appear in a log line or an error message,
    whatever the log level.

    Connections beyond the pool would be opened and closed per request, and a ping costs a round trip per unit
    of work. A connection the server dropped fails once; SQLAlchemy then invalidates and refills the pool.
    The pool hands out the connection used last: the few that steady work needs keep their prepared statements
    warm, where taking each in turn made all of them prepare every statement (buys: statements prepared anew per
    thousand sent by the IPN intake, docs/PERFORMANCE.md, fifteenth session).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=30,
            pool_recycle=1800,
            pool_use_lifo=True,
            hide_parameters=True,
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


DIALECTS = ("postgresql", "sqlite")
"""The databases the app runs on: a statement that differs between them is built once for each."""


@contextlib.asynccontextmanager
async def command_sessionmaker(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions for a one-off command (partners, api-keys, secrets, audit verify): its own engine, disposed after."""
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def dialect_insert(dialect: str) -> Callable[..., Insert]:
    """The dialect's INSERT, the one with `ON CONFLICT` (`on_conflict_do_nothing`, `on_conflict_do_update`)."""
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


class epoch_bucket(FunctionElement[int]):
    """`floor((seconds since 1970 of column + offset) / width)`: which `width`-second slot a time falls in.

    Charts count by hour and by day in the reader's time zone (`offset`, its UTC offset in seconds) inside the
    database, so a month of orders is grouped there and only the buckets come back. Written out per dialect below.
    """

    type = BigInteger()
    inherit_cache = True

    def __init__(self, column: Any, width: int, offset: int = 0) -> None:
        super().__init__(column, literal(width), literal(offset))


@compiles(epoch_bucket, "postgresql")
def _epoch_bucket_postgresql(element: epoch_bucket, compiler: Any, **kw: Any) -> str:
    column, width, offset = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(floor((extract(epoch from {column}) + {offset}) / {width}) AS BIGINT)"


@compiles(epoch_bucket, "sqlite")
def _epoch_bucket_sqlite(element: epoch_bucket, compiler: Any, **kw: Any) -> str:
    column, width, offset = (compiler.process(clause, **kw) for clause in element.clauses)
    # strftime('%s') reads the stored ISO text as whole seconds (exact at an hour's start, where julianday's floats
    # can fall a hair short); integer division of positive numbers is floor.
    return f"((CAST(strftime('%s', {column}) AS INTEGER) + {offset}) / {width})"


@dataclass(frozen=True)
class Database:
    """One database as the app uses it: the engine, ORM sessions on it, and its autocommit twin for lone statements."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    reader: AsyncEngine
    """`autocommit(engine)`: reads that need no transaction, single-row writes, raw IPNs stored first."""

    @classmethod
    def on(cls, engine: AsyncEngine) -> "Database":
        return cls(engine, make_sessionmaker(engine), autocommit(engine))

    @classmethod
    def connect(cls, url: str, *, echo: bool = False, pool_size: int = 5) -> "Database":
        return cls.on(make_engine(url, echo=echo, pool_size=pool_size))

    async def close(self) -> None:
        await self.engine.dispose()


async def provide_db_session(
    db_sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]],
) -> AsyncIterator[AsyncSession]:
    """One session per request, no implicit transaction: services open their own units of work."""
    async with db_sessionmaker() as session:
        yield session
