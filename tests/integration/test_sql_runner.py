"""The hot paths' statement runner: on PostgreSQL straight on asyncpg, elsewhere through SQLAlchemy, same results."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import String, TypeDecorator, bindparam, insert, select, text, type_coerce, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.integration.conftest import POSTGRES_ADMIN_DSN, both_databases, database_with_schema
from webapp.db import Database
from webapp.ipn.models import IpnReceipt
from webapp.orders.storage import LOCK_MANY
from webapp.sql_runner import (
    AlchemyRunner,
    DriverRunner,
    among,
    compiled,
    in_transaction,
    shape_of,
    standalone,
)

RECEIPTS = IpnReceipt.__table__
INSERT_RECEIPT = insert(RECEIPTS)
INSERT_RETURNING = INSERT_RECEIPT.returning(RECEIPTS.c.id, RECEIPTS.c.dedupe_key, sort_by_parameter_order=True)
BY_KEYS = select(RECEIPTS).where(among(RECEIPTS.c.dedupe_key, "keys")).order_by(RECEIPTS.c.id)
KEYS_AMONG = select(RECEIPTS.c.dedupe_key).where(among(RECEIPTS.c.dedupe_key, "keys")).order_by(RECEIPTS.c.id)
SET_VERDICT = update(RECEIPTS).where(RECEIPTS.c.id == bindparam("id_"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with database_with_schema(database_url) as database:
        yield database


def receipt(key: str, **values: object) -> dict[str, object]:
    return {"body": b'{"a": 1}', "body_size": 8, "headers": {"date": "x"}, "dedupe_key": key} | values


@both_databases
async def test_written_rows_read_back_with_their_types_and_python_side_defaults(db: Database) -> None:
    sent_at = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    async with in_transaction(db.engine) as sql:
        await sql.write(INSERT_RECEIPT, [receipt("a", processed_at=sent_at), receipt("b", processed_at=None)])
    async with standalone(db.reader) as sql:
        rows = await sql.rows(BY_KEYS, {"keys": ["a", "b", "nothing"]})
    assert [row["dedupe_key"] for row in rows] == ["a", "b"]
    first = rows[0]
    assert first["body"] == b'{"a": 1}' and first["headers"] == {"date": "x"}  # bytes and JSON as written
    assert first["processed_at"] == sent_at and first["processed_at"].tzinfo is not None  # an aware time
    assert first["attempts"] == 0  # a scalar default
    assert abs(first["received_at"] - datetime.now(UTC)) < timedelta(minutes=1)  # a callable default, aware


class Shouted(TypeDecorator[str]):
    """A type with processing both ways: lower-case in the database, upper-case in Python."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else value.lower()

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else value.upper()


@both_databases
async def test_types_process_values_both_ways_as_sqlalchemy_would(db: Database) -> None:
    async with in_transaction(db.engine) as sql:
        await sql.write(INSERT_RECEIPT, [receipt("mixed")])
        shouted = type_coerce(RECEIPTS.c.dedupe_key, Shouted()).label("key")
        found = select(shouted).where(RECEIPTS.c.dedupe_key == bindparam("key", type_=Shouted()))
        assert await sql.rows(found, {"key": "MIXED"}) == [{"key": "MIXED"}]
        assert await sql.scalars(found, {"key": "MiXeD"}) == ["MIXED"]


@both_databases
async def test_a_write_gives_what_its_returning_returns_in_the_order_of_its_rows(db: Database) -> None:
    keys = ["c", "a", "e", "b", "d"]
    async with in_transaction(db.engine) as sql:
        returned = await sql.write(INSERT_RETURNING, [receipt(key) for key in keys])
        assert await sql.write(INSERT_RECEIPT, [receipt("f")]) == []  # nothing without a RETURNING
    assert [row["dedupe_key"] for row in returned] == keys
    async with standalone(db.reader) as sql:
        stored = {row["id"]: row["dedupe_key"] for row in await sql.rows(BY_KEYS, {"keys": keys})}
    assert [stored[row["id"]] for row in returned] == keys


@both_databases
async def test_a_list_parameter_selects_the_same_rows_at_every_length(db: Database) -> None:
    keys = [f"k{number}" for number in range(20)]
    async with in_transaction(db.engine) as sql:
        await sql.write(INSERT_RECEIPT, [receipt(key) for key in keys])
        for length in (0, 1, 7, 20):
            assert await sql.scalars(KEYS_AMONG, {"keys": keys[:length]}) == keys[:length]


@both_databases
async def test_a_failing_statement_raises_sqlalchemys_error_and_rolls_the_whole_block_back(db: Database) -> None:
    async with in_transaction(db.engine) as sql:
        await sql.write(INSERT_RECEIPT, [receipt("first")])
        first_id = (await sql.scalars(select(RECEIPTS.c.id)))[0]
    with pytest.raises(IntegrityError):
        async with in_transaction(db.engine) as sql:
            await sql.write(SET_VERDICT, [{"id_": first_id, "verdict": "x"}])
            await sql.write(INSERT_RECEIPT, [receipt("second", id=first_id)])  # the primary key taken
    with pytest.raises(RuntimeError, match="ours"):  # an error of our own passes through as it is
        async with in_transaction(db.engine) as sql:
            await sql.write(SET_VERDICT, [{"id_": first_id, "verdict": "y"}])
            raise RuntimeError("ours")
    async with standalone(db.reader) as sql:
        assert await sql.scalars(select(RECEIPTS.c.verdict)) == [None]  # both updates rolled back with their blocks


on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
async def postgres(database_url: str) -> AsyncIterator[Database]:
    """A fresh PostgreSQL database with one pooled connection."""
    async with database_with_schema(database_url, pool_size=1) as database:
        yield database


@on_postgresql
async def test_on_postgresql_the_driver_gives_what_sqlalchemy_gives(postgres: Database) -> None:
    async with in_transaction(postgres.engine) as sql:
        assert isinstance(sql, DriverRunner)
        await sql.write(INSERT_RECEIPT, [receipt(f"k{number}", processed_at=datetime.now(UTC)) for number in range(3)])
    async with postgres.engine.connect() as connection:
        through_sqlalchemy = await AlchemyRunner(connection).rows(BY_KEYS, {"keys": ["k0", "k2"]})
    async with standalone(postgres.reader) as sql:
        through_the_driver = await sql.rows(BY_KEYS, {"keys": ["k0", "k2"]})
    assert len(through_the_driver) == 2
    assert [dict(row) for row in through_sqlalchemy] == through_the_driver
    # A list's items are parameters of their own, as SQLAlchemy's expanding IN gives them
    assert (
        "external_order_id IN ($1, $2) " in compiled(LOCK_MANY, postgres.engine.dialect, (("keys", 2),), many=False).sql
    )


@on_postgresql
async def test_on_postgresql_a_list_goes_as_one_of_seven_lengths_up_to_64_its_last_item_repeated(
    postgres: Database,
) -> None:
    def statement_text(keys: list[str]) -> str:
        return compiled(KEYS_AMONG, postgres.engine.dialect, shape_of({"keys": keys}), many=False).sql

    keys = [f"k{number}" for number in range(64)]
    assert len({statement_text(keys[:length]) for length in range(1, 65)}) == 7
    assert "IN ($1, $2, $3, $4) " in statement_text(keys[:3])
    async with in_transaction(postgres.engine) as sql:
        await sql.write(INSERT_RECEIPT, [receipt(key) for key in keys[:5]])
        assert await sql.scalars(KEYS_AMONG, {"keys": ["k4", "k0", "k2"]}) == ["k0", "k2", "k4"]


@on_postgresql
async def test_on_postgresql_an_expanding_in_is_refused_with_a_clear_error(postgres: Database) -> None:
    statement = select(RECEIPTS.c.id).where(RECEIPTS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="among"):
        async with standalone(postgres.reader) as sql:
            await sql.rows(statement, {"ids": [1]})


@on_postgresql
async def test_on_postgresql_a_connection_the_server_dropped_fails_once_and_is_replaced(postgres: Database) -> None:
    async with standalone(postgres.reader) as sql:
        backend = (await sql.scalars(text("SELECT pg_backend_pid()")))[0]
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", backend)
    finally:
        await admin.close()
    with pytest.raises(DBAPIError):
        async with in_transaction(postgres.engine) as sql:
            await sql.rows(select(RECEIPTS.c.id))
    async with in_transaction(postgres.engine) as sql:  # the pool's one connection was replaced
        assert await sql.scalars(text("SELECT pg_backend_pid()")) != [backend]


@on_postgresql
async def test_on_postgresql_statements_show_where_sqlalchemys_do_and_never_their_parameters(
    postgres: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with standalone(postgres.reader) as sql:
        with caplog.at_level(logging.WARNING, logger="sqlalchemy.engine.Engine"):  # the default: none shown
            await sql.rows(BY_KEYS, {"keys": ["secret-key"]})
        assert not [record for record in caplog.records if record.name == "sqlalchemy.engine.Engine"]
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):  # LOG_LEVEL=DEBUG
            await sql.rows(BY_KEYS, {"keys": ["secret-key"]})
    shown = [record.getMessage() for record in caplog.records if record.name == "sqlalchemy.engine.Engine"]
    assert len(shown) == 1 and "FROM ipn_receipt" in shown[0] and "secret-key" not in shown[0]
