"""The append-only audit log of support and admin actions, hash-chained so an edit or a deletion is detectable.

Each row carries the hash of the row before it and its own hash over its content, its id and that link.
Appending is safe with several instances: on PostgreSQL an advisory lock lets one appender at a time read the
head, and everywhere `prev_hash` is unique, so two writers that read the same head can never both insert.
"""

import asyncio
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import command_sessionmaker, utcnow
from webapp.i18n import N_

GENESIS = "0" * 64
AUDIT_LOCK_KEY = 0x617564_6974  # "audit": the advisory lock that serialises appends on PostgreSQL
ACTION_LABELS = {
    "reveal": N_("showed personal data"),
    "check_status": N_("checked the status with Alix Pay"),
    "reverify": N_("re-verified a notification (dry run)"),
    "review": N_("marked a notification reviewed"),
    "export": N_("exported a search (masked)"),
    "reveal_export": N_("exported a search with personal data"),
    "partner_saved": N_("saved a partner"),
    "partner_enabled": N_("switched a partner on"),
    "partner_disabled": N_("switched a partner off"),
    "partner_secret_rotated": N_("made a new webhook secret for a partner"),
    "webhook_resent": N_("sent a partner webhook again"),
    "email_resent": N_("sent an email to the customer again"),
    "case_taken": N_("took a problem"),
    "case_released": N_("gave a problem back"),
    "case_resolved": N_("resolved a problem"),
    "note_added": N_("wrote an internal note"),
    "signed_out": N_("signed a customer out everywhere"),
}
APPEND_TRIES = 40


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=320)
    """The email of the person who acted."""
    action: str = Field(max_length=32, index=True)
    """One of `ACTION_LABELS`."""
    order_id: int | None = Field(default=None, foreign_key="cashout_order.id", index=True)
    receipt_id: int | None = Field(default=None, foreign_key="ipn_receipt.id")
    reason: str = ""
    detail: str = ""
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64)


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """SHA-256 over the row's content, its position (id) and the previous row's hash."""
    content = {
        "id": entry.id,
        "at": entry.at.astimezone(UTC).isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "order_id": entry.order_id,
        "receipt_id": entry.receipt_id,
        "reason": entry.reason,
        "detail": entry.detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _head(session: AsyncSession) -> AuditEntry | None:
    return (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1))).first()


async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """The newest row's id and hash (0 and the genesis hash while the log is empty)."""
    head = await _head(session)
    return (head.id or 0, head.hash) if head else (0, GENESIS)


async def append(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    actor: str,
    action: str,
    order_id: int | None = None,
    receipt_id: int | None = None,
    reason: str = "",
    detail: str = "",
) -> AuditEntry:
    """Add one row at the head of the chain, in its own transaction."""
    for attempt in range(APPEND_TRIES):
        async with db_sessionmaker() as session:
            try:
                async with session.begin():
                    if session.bind.dialect.name == "postgresql":  # one appender at a time, across instances
                        await session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=AUDIT_LOCK_KEY))  # type: ignore[call-overload]
                    head = await _head(session)
                    prev_hash = head.hash if head else GENESIS
                    entry = AuditEntry(
                        id=(head.id or 0) + 1 if head else 1,
                        actor=actor,
                        action=action,
                        order_id=order_id,
                        receipt_id=receipt_id,
                        reason=reason,
                        detail=detail,
                        prev_hash=prev_hash,
                        hash="",
                    )
                    entry.hash = entry_hash(entry, prev_hash)
                    session.add(entry)
                return entry
            except (IntegrityError, OperationalError):  # another writer took this place (or SQLite's write lock)
                await asyncio.sleep(random.uniform(0, 0.005) * (attempt + 1))  # noqa: S311 (jitter, not a secret)
    raise RuntimeError("could not append to the audit log: too many concurrent writers")


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    broken_at: int | None
    """The id of the first row whose hash or link does not hold (None when the chain is intact)."""
    problem: str = ""


async def verify_chain(session: AsyncSession) -> ChainCheck:
    """Walk the chain in id order: every row must link to the one before it and hash to what it says."""
    expected_prev, expected_id, count = GENESIS, 1, 0
    for entry in (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all():
        count += 1
        if entry.id != expected_id:
            return ChainCheck(count, entry.id, f"row {expected_id} is missing")
        if entry.prev_hash != expected_prev:
            return ChainCheck(count, entry.id, "does not link to the row before it")
        if entry_hash(entry, entry.prev_hash) != entry.hash:
            return ChainCheck(count, entry.id, "its content does not match its hash")
        expected_prev, expected_id = entry.hash, expected_id + 1
    return ChainCheck(count, None)


async def verify_database(url: str) -> ChainCheck:
    async with command_sessionmaker(url) as sessionmaker, sessionmaker() as session:
        return await verify_chain(session)
