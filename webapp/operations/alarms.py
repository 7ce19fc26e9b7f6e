"""Alarms, once per incident: silent IPNs, parked emails, or a background job that keeps failing (on any instance).

An incident opens with one ERROR log line and (when `ALARM_WEBHOOK_URL` is set) one POST, and closes with one
INFO line and one POST, however many rounds it lasts. Its state lives in the database, so several instances
raise it once between them.
"""

import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.audit import chain_head
from webapp.db import utcnow
from webapp.job_board import job_rows
from webapp.metrics import ALARMS_OPEN
from webapp.notifications.models import EmailMessage
from webapp.operations.overview import ipn_silence

logger = logging.getLogger(__name__)
IPN_SILENCE = "ipn_silence"
MAIL_PARKED = "mail_parked"
AUDIT_ANCHOR = "audit_anchor"
"""Not an alarm: the daily note of the audit chain's head, sent the same way."""


class AlarmState(SQLModel, table=True):
    __tablename__ = "alarm_state"

    name: str = Field(primary_key=True, max_length=64)
    """ipn_silence | mail_parked | job:<job name>"""
    open: bool = False
    since: datetime = Field(default_factory=utcnow)
    detail: str = ""


class Alarms:
    def __init__(
        self,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        *,
        silence_after: timedelta,
        job_failures: int,
        webhook_url: str | None,
    ) -> None:
        self._sessionmaker = db_sessionmaker
        self._silence_after = silence_after
        self._job_failures = job_failures
        self._webhook_url = webhook_url

    async def check(self) -> int:
        """One round of the alarm job: returns how many incidents opened or closed."""
        async with self._sessionmaker() as session:
            silence = await ipn_silence(session, after=self._silence_after)
            parked = (await session.exec(select(func.count()).where(EmailMessage.state == "parked"))).one()
            jobs = await job_rows(session)  # every instance's rounds: one state, one incident
        waiting = silence.waiting_since.isoformat() if silence.waiting_since else "-"
        last = silence.last_ipn_at.isoformat() if silence.last_ipn_at else "never"
        conditions = {
            IPN_SILENCE: (
                silence.silent,
                f"no verified IPN since {last} while orders wait (oldest since {waiting})",
            ),
            MAIL_PARKED: (
                parked > 0,
                f"{parked} emails could not be built and wait for a person (support: the order's timeline)",
            ),
        }
        for job in jobs:
            failing = job.failures_in_a_row >= self._job_failures
            conditions[f"job:{job.name}"] = (
                failing,
                f"{job.failures_in_a_row} failed rounds in a row ({job.last_error}, last on {job.last_instance})",
            )
        changed = 0
        for name, (firing, detail) in conditions.items():
            if await self._set(name, firing, detail):
                changed += 1
                await self._announce(name, firing, detail)
            ALARMS_OPEN.labels(name).set(1 if firing else 0)
        return changed

    async def _set(self, name: str, firing: bool, detail: str) -> bool:
        """Move the alarm to `firing`; True only for the one caller (of all instances) that changed it."""
        try:
            async with self._sessionmaker() as session, session.begin():
                query = select(AlarmState).where(AlarmState.name == name).with_for_update()
                state = (await session.exec(query)).first()
                if state is None:
                    if not firing:
                        return False
                    session.add(AlarmState(name=name, open=True, detail=detail))
                    return True
                if state.open == firing:
                    return False
                state.open, state.since, state.detail = firing, utcnow(), detail
                return True
        except IntegrityError:  # another instance opened it first
            return False

    async def _announce(self, name: str, firing: bool, detail: str) -> None:
        if firing:
            logger.error("alarm %s firing: %s", name, detail)
        else:
            logger.info("alarm %s resolved", name)
        await self._post(name, {"alarm": name, "state": "firing" if firing else "resolved", "detail": detail})

    async def anchor_audit_log(self) -> int:
        """The audit-anchor job: the audit chain's newest row and hash, written where the database cannot undo it.

        Someone able to delete the newest audit rows can leave a chain that still verifies; the head written
        out daily (this log line, the alarm webhook) shows what they removed (docs/RELIABILITY.md).
        """
        async with self._sessionmaker() as session:
            row, head = await chain_head(session)
        logger.info("audit log head: row %s, hash %s", row, head)
        await self._post(AUDIT_ANCHOR, {"alarm": AUDIT_ANCHOR, "state": "info", "row": row, "hash": head})
        return 1

    async def _post(self, name: str, payload: dict[str, object]) -> None:
        if not self._webhook_url:
            return
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(self._webhook_url, json=payload | {"at": utcnow().isoformat()})
                response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("alarm %s: the alert webhook failed (%s)", name, type(exc).__name__)


async def open_alarms(session: AsyncSession) -> list[AlarmState]:
    return list((await session.exec(select(AlarmState).where(AlarmState.open == True))).all())  # noqa: E712
