"""Server-side HTTP sessions kept in our database, so several app instances share them."""

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from time import monotonic
from typing import Any, TypeVar, cast

from litestar.channels import ChannelsPlugin
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Insert, LargeBinary, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from webapp.db import DIALECTS, autocommit, dialect_insert
from webapp.sql_runner import standalone


class HttpSession(SQLModel, table=True):
    """A session as Litestar's store keeps it: bytes under a key, until an optional expiry."""

    __tablename__ = "http_session"

    key: str = Field(primary_key=True, max_length=255)
    data: bytes = Field(sa_type=LargeBinary, nullable=False)  # type: ignore[call-overload]
    expires_at: datetime | None = Field(default=None, index=True)

    owner: int | None = Field(default=None, index=True)
    """The signed-in person's id (`LazySessionConfig.owner_of`): support can end every session of one person."""


Kept = TypeVar("Kept")


def to_session(value: object) -> Any:
    """A dataclass as the JSON values a session (or a sealed cookie) keeps."""
    return _adapter(type(value)).dump_python(value, mode="json")


def from_session(kind: type[Kept], data: Any) -> Kept | None:
    """What `to_session` kept, as its dataclass again; None when absent or of another shape (an older release's)."""
    if data is None:
        return None
    try:
        return _adapter(kind).validate_python(data)
    except ValidationError:
        return None


@cache
def _adapter(kind: type) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def _due_for_renewal(expires_at: datetime, renew_for: int | timedelta) -> bool:
    """Renew a sliding expiry only once half of it is used up: one write per half idle period, not per request."""
    seconds = renew_for.total_seconds() if isinstance(renew_for, timedelta) else renew_for
    return (expires_at - datetime.now(UTC)).total_seconds() < seconds / 2


def _expiry(expires_in: int | timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
    return datetime.now(UTC) + timedelta(seconds=seconds)


class DatabaseStore(Store):
    """Litestar `Store` over the sessions' table of keyed, expiring rows; an expired row reads as absent and is removed.

    Every signed-in request reads its session here, so each call is one core statement (two when it renews or
    removes) that commits on its own, run on the driver (`sql_runner.py`): no ORM unit of work and no BEGIN/COMMIT
    round trips around a single row.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)
        self._standing: dict[str, tuple[float, asyncio.Future[bool]]] = {}
        """`stands`' answers by key, with when each was asked."""
        rows = HttpSession.__table__  # type: ignore[attr-defined]
        self._rows = rows
        at_key = rows.c.key == bindparam("at_key")
        self._read = select(rows.c.data, rows.c.expires_at).where(at_key)
        self._renew = update(rows).where(at_key)
        self._delete = delete(rows).where(at_key)
        self._delete_expired_one = delete(rows).where(at_key, rows.c.expires_at == bindparam("expired_at"))
        self._delete_expired = delete(rows).where(rows.c.expires_at <= bindparam("now")).returning(rows.c.key)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None, *, owner: int | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else value
        async with standalone(self._engine) as sql:
            # One statement whether the row exists or not; of two set at the same moment, the later one wins.
            await sql.write(
                STORE_SESSION[sql.dialect],
                [{"key": key, "data": data, "expires_at": _expiry(expires_in), "owner": owner}],
            )

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        async with standalone(self._engine) as sql:
            found = await sql.rows(self._read, {"at_key": key})
            if not found:
                return None
            data, expires_at = found[0]["data"], found[0]["expires_at"]
            if expires_at is not None and expires_at <= datetime.now(UTC):
                await sql.write(self._delete_expired_one, [{"at_key": key, "expired_at": expires_at}])
                return None
            if renew_for is not None and expires_at is not None and _due_for_renewal(expires_at, renew_for):
                await sql.write(self._renew, [{"at_key": key, "expires_at": _expiry(renew_for)}])
            return bytes(data)

    async def delete(self, key: str) -> None:
        self._forget([key])
        async with standalone(self._engine) as sql:
            await sql.write(self._delete, [{"at_key": key}])

    async def delete_all(self) -> None:
        self._standing.clear()
        async with self._engine.connect() as connection:
            await connection.execute(delete(self._rows))

    async def delete_expired(self) -> list[str]:
        """Remove the expired rows and name them (a session's end is announced by its key's tag)."""
        async with self._engine.connect() as connection:
            keys = list((await connection.execute(self._delete_expired, {"now": datetime.now(UTC)})).scalars())
        self._forget(keys)
        return keys

    async def count_owned_by(self, owner: int) -> int:
        """How many live (unexpired) sessions one person has."""
        live = (self._rows.c.expires_at.is_(None)) | (self._rows.c.expires_at > datetime.now(UTC))
        statement = select(func.count()).select_from(self._rows).where(self._rows.c.owner == owner, live)
        async with self._engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def delete_owned_by(self, owner: int) -> list[str]:
        """Remove every session of one person (signed out by support) and name them."""
        statement = delete(self._rows).where(self._rows.c.owner == owner).returning(self._rows.c.key)
        async with self._engine.connect() as connection:
            keys = list((await connection.execute(statement)).scalars())
        self._forget(keys)
        return keys

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def stands(self, key: str) -> bool:
        """Whether the session is stored, as read at most STANDING_SECONDS ago on this instance.

        Every live stream asks at its keep-alive tick whether its session still stands, and the streams of one
        person (and of one order) ask together: they share one read a second (issue 30, the live fan-out's CPU per
        update). A sign-out here forgets the answer; elsewhere it ends the streams by its announcement.
        """
        now = monotonic()
        known = self._standing.get(key)
        if known is None or not _still_good(known, now):
            if len(self._standing) >= STANDING_KEPT:
                self._standing = {kept: answer for kept, answer in self._standing.items() if _still_good(answer, now)}
            known = self._standing[key] = (now, asyncio.ensure_future(self.exists(key)))
        return await asyncio.shield(known[1])

    def _forget(self, keys: list[str]) -> None:
        for key in keys:
            self._standing.pop(key, None)

    async def expires_in(self, key: str) -> int | None:
        async with standalone(self._engine) as sql:
            found = await sql.rows(self._read, {"at_key": key})
        if not found or found[0]["expires_at"] is None:
            return None
        return max(0, int((found[0]["expires_at"] - datetime.now(UTC)).total_seconds()))


STANDING_SECONDS = 1.0
STANDING_KEPT = 1024
"""Answers of `stands` kept before the stale ones are dropped."""


def _still_good(answer: tuple[float, "asyncio.Future[bool]"], now: float) -> bool:
    """Young enough, read on this event loop (an app can be started again on another), and not a failed read."""
    asked, reading = answer
    failed = reading.done() and (reading.cancelled() or reading.exception() is not None)
    return now - asked < STANDING_SECONDS and reading.get_loop() is asyncio.get_running_loop() and not failed


def _store_session(dialect: str) -> Insert:
    rows = HttpSession.__table__  # type: ignore[attr-defined]
    insert_row = dialect_insert(dialect)(rows)
    written = {name: insert_row.excluded[name] for name in ("data", "expires_at", "owner")}
    return insert_row.on_conflict_do_update(index_elements=[rows.c.key], set_=written)


STORE_SESSION = {dialect: _store_session(dialect) for dialect in DIALECTS}
"""Built once per dialect: a session's row written whether it exists or not."""


SESSION_COOKIE = "session"
EMBED_SESSION_COOKIE = "embed_session"
"""The embedded pages' own session cookie (path `/embed`): see `PartitionedSessionBackend`."""
ROTATE_STATE_KEY = "session_rotation"
LOADED_STATE_KEY = "session_loaded"


def rotate_session_id(connection: ASGIConnection) -> None:
    """Give this session a new id when the response is sent (at sign-in, against session fixation)."""
    connection.scope.setdefault("state", {})[ROTATE_STATE_KEY] = {"new_id": None}  # type: ignore[typeddict-item]


class LazySessionBackend(ServerSideSessionBackend):
    """Write a session (row and cookie) only once it holds data, so anonymous page views cost no database write.

    Also honours `rotate_session_id`: the old row is deleted and the data is stored under a fresh id.
    """

    def get_session_id(self, connection: ASGIConnection) -> str:
        rotation = connection.scope.get("state", {}).get(ROTATE_STATE_KEY)
        if rotation is None:
            return super().get_session_id(connection)
        if rotation["new_id"] is None:
            rotation["new_id"] = self.generate_session_id()
        return rotation["new_id"]

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        if data:
            connection.scope.setdefault("state", {})[LOADED_STATE_KEY] = self.serialize_data(data, connection.scope)  # type: ignore[typeddict-item]
        return data

    def _unchanged(self, scope_session: ScopeSession, connection: ASGIConnection) -> bool:
        state = connection.scope.get("state", {})
        loaded = state.get(LOADED_STATE_KEY)
        if loaded is None or ROTATE_STATE_KEY in state or not scope_session:
            return False
        return self.serialize_data(scope_session, connection.scope) == loaded  # type: ignore[arg-type]

    async def set(self, session_id: str, data: bytes, store: Store) -> None:
        owner_of = getattr(self.config, "owner_of", None)
        if owner_of is None or not isinstance(store, DatabaseStore):
            await super().set(session_id, data, store)
            return
        expires_in = int(self.config.max_age) if self.config.max_age is not None else None
        await store.set(session_id, data, expires_in=expires_in, owner=owner_of(json.loads(data)))

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        try:
            await self._store(scope_session, message, connection)
        finally:
            # Only `_unchanged` reads the loaded form: a long response (a live stream) need not keep it.
            connection.scope.get("state", {}).pop(LOADED_STATE_KEY, None)

    async def _store(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        if self._unchanged(scope_session, connection):  # nothing to write: only the cookie goes out again
            cookie_params = dict(
                extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
            )
            cookie = Cookie(value=self.get_session_id(connection), key=self.config.key, **cookie_params)
            MutableScopeHeaders.from_message(message).add("Set-Cookie", cookie.to_header(header=""))
            return
        had_cookie = self.config.key in connection.cookies
        if had_cookie and ROTATE_STATE_KEY in connection.scope.get("state", {}):
            await self.delete(connection.cookies[self.config.key], store=self.config.get_store_from_app(connection.app))
        if not scope_session:
            if had_cookie:
                await super().store_in_message(Empty, message, connection)
            return
        await super().store_in_message(scope_session, message, connection)


@dataclass
class LazySessionConfig(ServerSideSessionConfig):
    _backend_class = LazySessionBackend
    owner_of: Callable[[dict[str, Any]], int | None] | None = None
    """Who a session's data says is signed in, kept beside it (`HttpSession.owner`)."""


class PartitionedSessionBackend(LazySessionBackend):
    """The embedded pages' session cookie also carries `Partitioned` (CHIPS).

    A cookie set inside one partner's frame is kept for that top-level site alone, and browsers that block
    third-party cookies still accept it.
    """

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        await super().store_in_message(scope_session, message, connection)
        headers = MutableScopeHeaders.from_message(message)
        cookies = headers.getall("set-cookie", [])
        if not cookies:
            return
        del headers["set-cookie"]
        for cookie in cookies:
            ours = cookie.startswith(f"{self.config.key}=") and "partitioned" not in cookie.lower()
            headers.add("set-cookie", f"{cookie}; Partitioned" if ours else cookie)


SESSIONS_ENDED = "sessions-ended"
"""The channel on which a signed-out session is announced to every instance: its live streams end at once."""


def tag_of(key: str) -> str:
    """What a shared channel may say about a session: a digest of its id, never the id.

    The id is a bearer token, and NOTIFY payloads are visible to the database's users.
    """
    return hashlib.sha256(f"cashout session\0{key}".encode()).hexdigest()[:32]


def session_tag(connection: ASGIConnection, cookie: str) -> str | None:
    """The tag of this request's session, if it came with one."""
    key = connection.cookies.get(cookie)
    return tag_of(key) if key else None


def announce_session_end(channels: ChannelsPlugin, tag: str | None) -> None:
    if tag is not None:
        channels.publish({"session": tag}, [SESSIONS_ENDED])


def announce_sessions_ended(channels: ChannelsPlugin, keys: list[str]) -> None:
    """Sessions removed from the store (expired, or signed out by support): their live streams end everywhere."""
    for key in keys:
        announce_session_end(channels, tag_of(key))


async def end_expired_sessions(store: DatabaseStore, channels: ChannelsPlugin) -> int:
    """The session clean-up job: expired rows go, and their streams on every instance end at once."""
    keys = await store.delete_expired()
    announce_sessions_ended(channels, keys)
    return len(keys)


async def session_exists(connection: ASGIConnection, cookie: str) -> bool:
    """Whether the session this request came with is still stored (not signed out, not expired)."""
    key = connection.cookies.get(cookie)
    return bool(key) and await cast(DatabaseStore, connection.app.stores.get("sessions")).stands(key)


@dataclass
class PartitionedSessionConfig(LazySessionConfig):
    _backend_class = PartitionedSessionBackend
