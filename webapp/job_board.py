"""The job board: one row per background job, shared by every instance: who runs its next round, how rounds went.

**Once per cluster.** With several instances on PostgreSQL every one runs the same jobs (and `SKIP LOCKED` keeps
them correct), but N instances would poll N times. An instance runs a round only when its claim updates the
job's row (`ClusterLeases`), so each job runs once per interval across the cluster. One that stops between
rounds (the usual case) is replaced within one interval, when the round is due again; one killed during a round
is replaced when that round's lease (`busy_until`) runs out. SQLite serves one instance: no claims there.

**Shared health.** Each round's outcome is written to the same row (`JobBoard.record`): when, where, the
failures in a row, the error class. The alarms and `/operations` read these rows, so every instance sees the
same state: an alarm opens once and closes once, whichever instance ran the failing round.

**Instances.** Every instance writes a heartbeat (`AppInstance`): `/operations` lists them all, alive or gone.
"""

from datetime import datetime, timedelta
from importlib.metadata import version

from sqlalchemy import Insert, delete, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import DIALECTS, dialect_insert, utcnow

ROUND_LEASE_SECONDS = 60.0
"""The longest a round may hold its job before another instance may take it (a holder killed mid-round)."""


HEARTBEAT_SECONDS = 15.0
GONE_AFTER_BEATS = 3
"""An instance not heard from for this many heartbeats is shown as gone (stopped, killed, or cut off)."""
FORGOTTEN_AFTER = timedelta(days=1)


class AppInstance(SQLModel, table=True):
    """One running instance (process) of the app, as its heartbeats tell it."""

    __tablename__ = "app_instance"

    id: str = Field(primary_key=True, max_length=120)
    """`host:pid`"""
    host: str = Field(max_length=255)
    version: str = Field(max_length=40)
    started_at: datetime
    last_seen_at: datetime = Field(index=True)

    @property
    def alive(self) -> bool:
        return utcnow() - self.last_seen_at <= timedelta(seconds=HEARTBEAT_SECONDS * GONE_AFTER_BEATS)


class BackgroundJob(SQLModel, table=True):
    __tablename__ = "background_job"

    name: str = Field(primary_key=True, max_length=40)
    due_at: datetime = Field(default_factory=utcnow)
    """When the next round may start, anywhere."""
    busy_until: datetime | None = None
    """Set while a claimed round runs (its holder clears it when the round ends)."""
    holder: str | None = Field(default=None, max_length=120)
    """The instance (`host:pid`) that claimed the latest round."""
    last_round_at: datetime | None = None
    last_success_at: datetime | None = None
    failures_in_a_row: int = 0
    last_error: str = Field(default="", max_length=200)
    """The exception class of the last failed round."""
    last_instance: str | None = Field(default=None, max_length=120)
    """The instance that ran the latest round."""


CLAIM = text(
    "UPDATE background_job SET holder = :holder,"
    " due_at = now() + make_interval(secs => :interval), busy_until = now() + make_interval(secs => :lease)"
    " WHERE name = :name AND due_at <= now() AND (busy_until IS NULL OR busy_until <= now())"
)
KNOWN = text(
    "INSERT INTO background_job (name, due_at, failures_in_a_row, last_error) VALUES (:name, now(), 0, '')"
    " ON CONFLICT (name) DO NOTHING"
)
RELEASE = text("UPDATE background_job SET busy_until = NULL WHERE name = :name AND holder = :holder")


class ClusterLeases:
    """One instance's claims on the jobs' rounds (PostgreSQL's clock decides, so instances' clocks may differ)."""

    def __init__(self, engine: AsyncEngine, instance: str) -> None:
        self.engine, self.instance = engine, instance

    async def claim(self, name: str, interval: float) -> bool:
        """True if this instance runs the round now; False if another did (or does) within this interval."""
        async with self.engine.begin() as connection:
            await connection.execute(KNOWN, {"name": name})
            values = {"name": name, "holder": self.instance, "interval": interval}
            claimed = await connection.execute(CLAIM, {**values, "lease": max(ROUND_LEASE_SECONDS, interval)})
        return claimed.rowcount == 1

    async def release(self, name: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(RELEASE, {"name": name, "holder": self.instance})


def _recorder(dialect: str, *, succeeded: bool) -> Insert:
    statement = dialect_insert(dialect)(BackgroundJob.__table__)  # type: ignore[arg-type]
    table, new = BackgroundJob.__table__.c, statement.excluded  # type: ignore[attr-defined]
    changes = {"last_round_at": new.last_round_at, "last_instance": new.last_instance}
    if succeeded:
        changes |= {"last_success_at": new.last_round_at, "failures_in_a_row": 0}
    else:
        changes |= {"failures_in_a_row": table.failures_in_a_row + 1, "last_error": new.last_error}
    return statement.on_conflict_do_update(index_elements=["name"], set_=changes)


RECORD = {
    (dialect, succeeded): _recorder(dialect, succeeded=succeeded) for dialect in DIALECTS for succeeded in (True, False)
}
"""Built once: a round's outcome added to the job's row, the failures in a row counted by the database."""


def _beat(dialect: str) -> Insert:
    statement = dialect_insert(dialect)(AppInstance.__table__)  # type: ignore[arg-type]
    return statement.on_conflict_do_update(
        index_elements=["id"], set_={"last_seen_at": statement.excluded.last_seen_at}
    )


BEAT = {dialect: _beat(dialect) for dialect in DIALECTS}


class JobBoard:
    """Where every instance writes how its rounds went and that it is alive; the alarms and `/operations` read it."""

    def __init__(self, engine: AsyncEngine, instance: str) -> None:
        self.engine, self.instance = engine, instance
        self.started_at = utcnow()

    async def heartbeat(self) -> int:
        """This instance is alive (a job every instance runs); instances gone for a day are forgotten."""
        row = {
            "id": self.instance,
            "host": self.instance.rpartition(":")[0],
            "version": version("webapp"),
            "started_at": self.started_at,
            "last_seen_at": utcnow(),
        }
        async with self.engine.begin() as connection:
            await connection.execute(BEAT[connection.dialect.name], row)
            forgotten = delete(AppInstance).where(col(AppInstance.last_seen_at) < utcnow() - FORGOTTEN_AFTER)
            await connection.execute(forgotten)
        return 0  # nothing handled worth a line every 15 s (a failing heartbeat is logged as any failing round)

    async def record(self, name: str, failed: str | None) -> None:
        """A round of `name` ran here: it succeeded (`failed` None) or raised the exception class `failed`."""
        now = utcnow()
        row = {
            "name": name,
            "due_at": now,
            "last_round_at": now,
            "last_success_at": now if failed is None else None,
            "failures_in_a_row": 0 if failed is None else 1,
            "last_error": failed or "",
            "last_instance": self.instance,
        }
        async with self.engine.begin() as connection:
            await connection.execute(RECORD[(connection.dialect.name, failed is None)], row)


async def instances(session: AsyncSession) -> list[AppInstance]:
    """Every instance heard from in the last day, the most recently started first."""
    statement = select(AppInstance).order_by(col(AppInstance.started_at).desc(), col(AppInstance.id))
    return list((await session.exec(statement)).all())


async def job_rows(session: AsyncSession) -> list[BackgroundJob]:
    """Every job's shared state, by name."""
    return list((await session.exec(select(BackgroundJob).order_by(col(BackgroundJob.name)))).all())
