"""The hot paths' SQL Core statements, run on PostgreSQL by asyncpg itself and elsewhere by SQLAlchemy.

SQLAlchemy builds every statement and compiles it once per shape of its parameters (their names, the length of each
list); on PostgreSQL the compiled text then goes straight to the driver connection of a pooled SQLAlchemy connection,
with the bind and result processors of the columns' types and the columns' Python-side defaults applied as
SQLAlchemy would. On SQLite (the embedded default and most tests) the same statements run through SQLAlchemy.

What this buys (docs/PERFORMANCE.md, tenth session): a statement through SQLAlchemy's execution layer cost
~100-170 µs of CPU more than on asyncpg, and an IPN's judged batch is about twelve statements; served, an IPN's CPU
at 16 connections fell from 0.95 to ~0.7 ms, an order's (review, its page, confirm) from 15.4 to 12.5 ms.

A runner hands rows back as mappings by column label, and raises SQLAlchemy's exceptions (`IntegrityError` …)
either way; a connection the server dropped is invalidated, so the pool replaces it.
"""

import logging
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sqlalchemy import Boolean, ColumnElement, Executable, bindparam, false
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

Row = Mapping[str, Any]


class SqlRunner(Protocol):
    """Runs statements on one connection (in a transaction, or each on its own)."""

    dialect: str
    """`postgresql` or `sqlite`: for the statements built once per dialect."""

    async def rows(self, statement: Executable, params: Row | None = None) -> Sequence[Row]:
        """The rows a SELECT (or a statement with RETURNING) gives, as mappings by column label."""
        ...

    async def scalars(self, statement: Executable, params: Row | None = None) -> list[Any]:
        """The first column of every row."""
        ...

    async def write(self, statement: Executable, rows: Sequence[Row]) -> Sequence[Row]:
        """An INSERT or UPDATE once per row of parameters, in one round trip on PostgreSQL.

        Gives what its RETURNING returns (nothing without one), in the order of the rows.
        """
        ...


@asynccontextmanager
async def in_transaction(engine: AsyncEngine) -> AsyncIterator[SqlRunner]:
    """A runner whose statements commit together when the block ends, and are rolled back if it raises."""
    async with engine.connect() as connection:
        if _on_asyncpg(connection):
            async with _on_driver(connection) as runner, runner.driver.transaction():
                yield runner
        else:
            async with connection.begin():
                yield AlchemyRunner(connection)


@asynccontextmanager
async def standalone(engine: AsyncEngine) -> AsyncIterator[SqlRunner]:
    """A runner whose statements each commit on their own (reads that need no snapshot, lone writes).

    `engine` is an `autocommit` engine (`db.py`) for SQLAlchemy; asyncpg outside a transaction commits each
    statement by itself.
    """
    async with engine.connect() as connection:
        if _on_asyncpg(connection):
            async with _on_driver(connection) as runner:
                yield runner
        else:
            yield AlchemyRunner(connection)


class among(ColumnElement[bool]):
    """`column IN` the list bound as `name`: SQLAlchemy's expanding IN, compiled by the driver runner per length.

    Not `= ANY(:array)`: PostgreSQL then plans for a list of unknown length, and its generic plans took the IPN
    receipts' verdict index, reading every judged receipt on every claim (docs/PERFORMANCE.md, tenth session).
    The driver runner sends a list as `listed_length` parameters, its last item repeated.
    """

    type = Boolean()
    inherit_cache = True
    _traverse_internals: ClassVar = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


@compiles(among)
def _among_as_in(element: among, compiler: SQLCompiler, **kw: Any) -> str:
    length = kw.get(LIST_LENGTHS, {}).get(element.name)
    if length is None:  # SQLAlchemy's execution expands the list
        listed: ColumnElement[bool] = element.column.in_(bindparam(element.name, expanding=True))
    elif length:
        listed = element.column.in_([bindparam(listed_name(element.name, index)) for index in range(length)])
    else:
        listed = false()
    return compiler.process(listed, **kw)


LIST_LENGTHS = "sql_runner_list_lengths"
"""The compile keyword that tells `among` how long each of its lists is."""


def listed_name(name: str, index: int) -> str:
    return f"{name}__{index}"


def listed_length(length: int) -> int:
    """How many parameters a list of `length` items goes as: the next power of two (the last item repeated).

    asyncpg prepares each statement text once per connection and keeps 100 per connection; a text per length would
    be up to 64 for each list of a judged batch of IPNs (its receipts, orders and deliveries, then the live cards),
    prepared again on every pooled connection and pushed out of its cache at mixed sizes. Rounded, a list has seven
    texts up to 64. Buys: statements prepared anew per thousand sent by the IPN intake (docs/PERFORMANCE.md,
    fifteenth session). `x IN (a, b, b, b)` selects what `x IN (a, b)` does.
    """
    return 1 << (length - 1).bit_length() if length else 0


class AlchemyRunner:
    """Statements through SQLAlchemy (SQLite, and any database without asyncpg)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    async def rows(self, statement: Executable, params: Row | None = None) -> Sequence[Row]:
        return (await self._connection.execute(statement, dict(params or {}))).mappings().all()

    async def scalars(self, statement: Executable, params: Row | None = None) -> list[Any]:
        return list((await self._connection.execute(statement, dict(params or {}))).scalars().all())

    async def write(self, statement: Executable, rows: Sequence[Row]) -> Sequence[Row]:
        if not rows:
            return []
        result = await self._connection.execute(statement, [dict(row) for row in rows])
        return result.mappings().all() if result.returns_rows else []


@dataclass(frozen=True)
class Compiled:
    """A statement as asyncpg takes it: its text, where each parameter goes and how its value is made."""

    sql: str
    names: tuple[str, ...]
    """The parameter names in their positions ($1, $2 …)."""
    listed: dict[str, tuple[str, int]]
    """Positions that take one item of a list given to `among`: the list's name and the item's index."""
    binds: tuple[Callable[[Any], Any] | None, ...]
    """Each position's bind processor (a JSON column's serialiser, an aware time's check), if its type has one."""
    defaults: dict[str, Callable[[], Any]]
    """Columns an INSERT or UPDATE fills with their Python-side default when a row does not give them."""
    results: tuple[Callable[[Any], Any] | None, ...]
    """Each result column's processor, if its type has one."""


Shape = tuple[tuple[str, int], ...]
"""The parameters given, by name, with each list's length as sent (`listed_length`; -1: not a list)."""
_COMPILED: "weakref.WeakKeyDictionary[Executable, dict[tuple[Shape, bool], Compiled]]" = weakref.WeakKeyDictionary()


def shape_of(params: Row) -> Shape:
    return tuple(
        sorted(
            (name, listed_length(len(value)) if isinstance(value, list | tuple) else -1)
            for name, value in params.items()
        )
    )


def compiled(statement: Executable, dialect: Dialect, shape: Shape, *, many: bool) -> Compiled:
    """`statement` compiled for asyncpg for parameters of this shape, kept as long as the statement lives."""
    kept = _COMPILED.get(statement)
    if kept is None:
        kept = _COMPILED[statement] = {}
    if (found := kept.get((shape, many))) is None:
        found = kept[shape, many] = _compile(statement, dialect, shape, many=many)
    return found


def _compile(statement: Executable, dialect: Dialect, shape: Shape, *, many: bool) -> Compiled:
    names = [name for name, _ in shape]
    lengths = {name: length for name, length in shape if length >= 0}
    options = {"column_keys": names, "compile_kwargs": {LIST_LENGTHS: lengths}}
    done = statement.compile(dialect=dialect, for_executemany=many, **options)  # type: ignore[attr-defined]
    if many and done._result_columns:
        # RETURNING for many rows: the one-row statement, run once per row in one round trip (asyncpg's fetchmany
        # answers in the rows' order), not SQLAlchemy's form for its own batching.
        done = statement.compile(dialect=dialect, **options)  # type: ignore[attr-defined]
    if done.post_compile_params or done.literal_execute_params:
        raise ValueError(f"{statement!r}: an expanding IN; use among() for a list given at execution, or = / OR")
    listed = {listed_name(name, index): (name, index) for name, length in lengths.items() for index in range(length)}
    defaults = {column.key: _default_of(column.default) for column in done.insert_prefetch}
    defaults |= {column.key: _default_of(column.onupdate) for column in done.update_prefetch}
    fixed = {
        name: bound.value
        for name, bound in done.binds.items()
        if name not in names and name not in listed and bound.value is not None
    }
    for name, value in fixed.items():  # a literal bound into the statement
        defaults.setdefault(name, lambda value=value: value)
    positions = tuple(done.positiontup or ())
    return Compiled(
        sql=done.string,
        names=positions,
        listed={name: source for name, source in listed.items() if name in positions},
        binds=tuple(done.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in positions),
        defaults=defaults,
        results=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in done._result_columns
        ),
    )


def _default_of(default: Any) -> Callable[[], Any]:
    if default.is_callable:
        return lambda: default.arg(None)  # SQLAlchemy wraps a default without arguments to take a context
    return lambda: default.arg


class DriverRunner:
    """Statements on asyncpg: compiled once by SQLAlchemy, their values processed as SQLAlchemy would."""

    dialect = "postgresql"

    def __init__(self, driver: Any, sa_dialect: Dialect) -> None:
        self.driver = driver
        self._dialect = sa_dialect

    async def rows(self, statement: Executable, params: Row | None = None) -> Sequence[Row]:
        params = params or {}
        done = self._compiled(statement, params, many=False)
        return _processed(done, await self.driver.fetch(done.sql, *_arguments(done, params)))

    async def scalars(self, statement: Executable, params: Row | None = None) -> list[Any]:
        params = params or {}
        done = self._compiled(statement, params, many=False)
        records = await self.driver.fetch(done.sql, *_arguments(done, params))
        process = done.results[0] if done.results else None
        return [record[0] if process is None else process(record[0]) for record in records]

    async def write(self, statement: Executable, rows: Sequence[Row]) -> Sequence[Row]:
        if not rows:
            return []
        done = self._compiled(statement, rows[0], many=True)
        arguments = [_arguments(done, row) for row in rows]
        if not done.results:
            await self.driver.executemany(done.sql, arguments)
            return []
        return _processed(done, await self.driver.fetchmany(done.sql, arguments))

    def _compiled(self, statement: Executable, params: Row, *, many: bool) -> Compiled:
        """The statement compiled for parameters like these, logged as it is about to be sent."""
        return _logged(compiled(statement, self._dialect, shape_of(params), many=many))


STATEMENTS = logging.getLogger("sqlalchemy.engine.Engine")
"""Where SQLAlchemy logs its statements (at INFO, when `LOG_LEVEL=DEBUG`, `logs.py`): the driver's go there too."""


def _logged(done: Compiled) -> Compiled:
    if STATEMENTS.isEnabledFor(logging.INFO):
        STATEMENTS.info("%s [on the driver; parameters not logged]", done.sql)
    return done


def _processed(done: Compiled, records: Sequence[Any]) -> list[Row]:
    if not any(done.results):
        return [dict(record.items()) for record in records]
    return [
        {
            name: value if process is None else process(value)
            for (name, value), process in zip(record.items(), done.results, strict=True)
        }
        for record in records
    ]


def _arguments(done: Compiled, params: Row) -> tuple[Any, ...]:
    values = []
    for name, process in zip(done.names, done.binds, strict=True):
        if name in params:
            value = params[name]
        elif name in done.listed:
            listed, index = done.listed[name]
            items = params[listed]
            value = items[min(index, len(items) - 1)]
        else:
            value = done.defaults[name]()
        values.append(value if process is None else process(value))
    return tuple(values)


def _on_asyncpg(connection: AsyncConnection) -> bool:
    return connection.dialect.driver == "asyncpg"


@asynccontextmanager
async def _on_driver(connection: AsyncConnection) -> AsyncIterator[DriverRunner]:
    """The connection's asyncpg connection; its errors raised as SQLAlchemy would, a dropped one invalidated."""
    pooled = await connection.get_raw_connection()
    runner = DriverRunner(pooled.driver_connection, connection.dialect)
    try:
        yield runner
    except Exception as error:
        translated = _as_sqlalchemy_error(error, pooled.dbapi_connection, connection.dialect)
        if runner.driver.is_closed() or (translated is not None and translated.connection_invalidated):
            await connection.invalidate()
        if translated is None:
            raise
        raise translated from error


def _as_sqlalchemy_error(error: Exception, adapted: Any, dialect: Dialect) -> DBAPIError | None:
    """The exception SQLAlchemy raises for this asyncpg error (`IntegrityError`, `OperationalError` …).

    None for an error that is not asyncpg's (raised by our code inside the block).
    """
    if not type(error).__module__.startswith("asyncpg"):
        return None
    try:
        adapted._handle_exception(error)  # SQLAlchemy's adapter raises the DB-API error it makes of it, always
    except Exception as dbapi_error:
        return DBAPIError.instance(
            None,
            None,
            dbapi_error,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=dialect.is_disconnect(dbapi_error, adapted, None),
        )
    return None  # pragma: no cover (the adapter never returns)
