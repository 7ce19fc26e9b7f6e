"""IPN processing, one committed step at a time: store raw → verify → parse → check → dedupe → apply → publish.

The raw receipt is committed before anything else, so nothing received is ever lost. Every receipt then gets a
verdict, whatever it contains: input is parsed with bounded cost (`alixpay/parsing.py`), and any exception while
judging is recorded on the receipt (`error`) and tried again with backoff until it is `parked` for a person.
A receipt whose processing was interrupted is processed again by the replay job (`process_pending`).
"""

import hashlib
import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import and_, col, or_, select

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.parsing import parse_json
from webapp.alixpay.schemas import OrderObject
from webapp.config import Settings
from webapp.i18n import N_
from webapp.ipn.models import IpnReceipt, utcnow
from webapp.logs import about_order
from webapp.metrics import IPN_RECEIPTS
from webapp.orders.transitions import StatusChange, StatusChanges

logger = logging.getLogger(__name__)


class IpnVerdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    MISMATCH = "mismatch"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_STATUS = "unknown_status"
    TOO_LARGE = "too_large"
    ERROR = "error"
    PARKED = "parked"


for _verdict in IpnVerdict:  # every verdict exported from the start, at 0 (Prometheus sees no gaps)
    IPN_RECEIPTS.labels(_verdict.value)

VERDICT_LABELS = {
    IpnVerdict.APPLIED: N_("applied"),
    IpnVerdict.DUPLICATE: N_("duplicate, ignored"),
    IpnVerdict.STALE: N_("older than what we knew, ignored"),
    IpnVerdict.MISMATCH: N_("does not match the order, not applied"),
    IpnVerdict.BAD_SIGNATURE: N_("bad signature, not applied"),
    IpnVerdict.MALFORMED: N_("unreadable, not applied"),
    IpnVerdict.UNKNOWN_ORDER: N_("unknown order"),
    IpnVerdict.UNKNOWN_STATUS: N_("unknown status, not applied"),
    IpnVerdict.TOO_LARGE: N_("too large, not applied"),
    IpnVerdict.ERROR: N_("processing failed, will be retried"),
    IpnVerdict.PARKED: N_("processing kept failing, needs a person"),
}
"""How each verdict reads to a person (support's timeline)."""

# What Alix Pay hears back: 2xx stops its retries, anything else asks for another delivery. A mismatch is
# acknowledged: delivering the same signed body again cannot help, a person has to look at it.
HTTP_STATUS = {
    IpnVerdict.APPLIED: 200,
    IpnVerdict.DUPLICATE: 200,
    IpnVerdict.STALE: 200,
    IpnVerdict.UNKNOWN_STATUS: 200,
    IpnVerdict.MISMATCH: 200,
    IpnVerdict.BAD_SIGNATURE: 400,
    IpnVerdict.MALFORMED: 400,
    IpnVerdict.UNKNOWN_ORDER: 404,
    IpnVerdict.TOO_LARGE: 413,
    IpnVerdict.ERROR: 500,
    IpnVerdict.PARKED: 500,
}
JUNK_VERDICTS = (IpnVerdict.MALFORMED, IpnVerdict.BAD_SIGNATURE, IpnVerdict.TOO_LARGE)
"""Receipts that never concerned an order we can trust: deleted after the retention period."""
KEPT_HEADERS = ("content-type", "content-length", "user-agent", "x-forwarded-for", "x-request-id")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for receipts whose judging raised: base, twice the base, four times … then parked."""

    base: timedelta = timedelta(seconds=30)
    max_attempts: int = 8

    @classmethod
    def of(cls, settings: Settings) -> "RetryPolicy":
        return cls(timedelta(seconds=settings.ipn_retry_base_seconds), settings.ipn_max_attempts)

    def next_delay(self, attempts: int) -> timedelta:
        return self.base * 2 ** min(attempts - 1, 16)


def dedupe_key(body: bytes) -> str:
    """The same notification delivered again has the same key."""
    return hashlib.sha256(body).hexdigest()


RECEIPTS = IpnReceipt.__table__
INSERT_RECEIPT = insert(RECEIPTS).returning(RECEIPTS.c.id)


async def store_raw(
    changes: StatusChanges,
    *,
    body: bytes,
    headers: dict[str, str],
    source_address: str | None,
    too_large: bool = False,
) -> int:
    """Commit the receipt exactly as received (an oversized body is kept up to the cap) and return its id."""
    receipt: dict[str, Any] = {
        "body": body,
        "body_size": len(body),
        "headers": {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS},
        "source_address": source_address,
        "dedupe_key": dedupe_key(body),
    }
    if too_large:
        receipt |= {"verdict": IpnVerdict.TOO_LARGE.value, "processed_at": utcnow()}
    async with changes.autocommit.connect() as connection:
        receipt_id = (await connection.execute(INSERT_RECEIPT, receipt)).scalar_one()
    if too_large:
        IPN_RECEIPTS.labels(IpnVerdict.TOO_LARGE.value).inc()
    return int(receipt_id)


class AlreadyJudged(Exception):
    """Another processor recorded this receipt's verdict first: this one's transaction is rolled back."""


UNJUDGED = or_(RECEIPTS.c.verdict.is_(None), RECEIPTS.c.verdict == IpnVerdict.ERROR)
STORED = select(RECEIPTS.c.body, RECEIPTS.c.verdict).where(RECEIPTS.c.id == bindparam("receipt_id"))
RECORD_VERDICT = update(RECEIPTS).where(RECEIPTS.c.id == bindparam("receipt_id"), UNJUDGED)
"""The verdict's columns come as the other parameters; written only while the receipt is unjudged."""
SEEN_BEFORE = select(RECEIPTS.c.id).where(
    RECEIPTS.c.dedupe_key == bindparam("dedupe_key"),
    RECEIPTS.c.id != bindparam("receipt_id"),
    RECEIPTS.c.verdict.in_([IpnVerdict.APPLIED, IpnVerdict.DUPLICATE, IpnVerdict.STALE]),
)


async def process(
    receipt_id: int,
    *,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    retry: RetryPolicy,
    body: bytes | None = None,
) -> IpnVerdict:
    """Decide and record the receipt's verdict; applying it to the order happens in the same transaction.

    The request that stored the receipt passes its `body` (no second read); a replay reads it. Either way the
    verdict is written only while the receipt is unjudged, so of two processors (a request and a replay, or two
    instances) exactly one commits its changes; the other's transaction is rolled back.
    """
    try:
        async with changes.unit() as change:
            if body is None:
                stored = (await change.connection.execute(STORED, {"receipt_id": receipt_id})).first()
                if stored is None:
                    raise LookupError(f"no IPN receipt {receipt_id}")
                if stored.verdict not in (None, IpnVerdict.ERROR):
                    return IpnVerdict(stored.verdict)
                body = stored.body
            judged = await _judge(change, receipt_id, body, alixpay)
            recorded = await change.connection.execute(
                RECORD_VERDICT,
                {
                    "receipt_id": receipt_id,
                    "verdict": judged.verdict.value,
                    "processed_at": utcnow(),
                    "next_attempt_at": None,
                    "external_order_id": judged.external_order_id,
                    "provider_status": judged.provider_status,
                },
            )
            if recorded.rowcount != 1:
                raise AlreadyJudged
    except AlreadyJudged:
        async with changes.db_sessionmaker() as session:
            verdict = (await session.exec(select(IpnReceipt.verdict).where(IpnReceipt.id == receipt_id))).one()
        return IpnVerdict(verdict)
    except Exception as exc:
        return await _record_failure(changes, receipt_id, exc, retry)
    verdict = judged.verdict
    IPN_RECEIPTS.labels(verdict.value).inc()
    with about_order(judged.external_order_id):
        logger.info("IPN receipt %s: %s", receipt_id, verdict.value)
    return verdict


def _where(exc: BaseException) -> str:
    """The exception's class and innermost frame: enough to find the bug, nothing of the input."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{place}"[:255]


async def _record_failure(changes: StatusChanges, receipt_id: int, exc: Exception, retry: RetryPolicy) -> IpnVerdict:
    """Judging raised: the receipt keeps its body and gets `error` (tried again later) or, at last, `parked`."""
    error = _where(exc)
    async with changes.db_sessionmaker() as session, session.begin():
        receipt = await session.get(IpnReceipt, receipt_id)
        if receipt is None:
            raise LookupError(f"no IPN receipt {receipt_id}") from None
        receipt.attempts += 1
        receipt.last_error = error
        if receipt.attempts >= retry.max_attempts:
            verdict, receipt.processed_at, receipt.next_attempt_at = IpnVerdict.PARKED, utcnow(), None
        else:
            verdict, receipt.next_attempt_at = IpnVerdict.ERROR, utcnow() + retry.next_delay(receipt.attempts)
        receipt.verdict = verdict.value
        attempts = receipt.attempts
    IPN_RECEIPTS.labels(verdict.value).inc()
    logger.error("IPN receipt %s: %s while judging (attempt %s): %s", receipt_id, error, attempts, verdict.value)
    return verdict


@dataclass(frozen=True)
class Assessment:
    """What a body says before it touches any order: unreadable, not signed by Alix Pay, or a signed order object."""

    refusal: IpnVerdict | None
    provider: OrderObject | None


def assess(body: bytes, alixpay: AlixPayClient) -> Assessment:
    try:
        provider = OrderObject.model_validate(parse_json(body))
    except ValueError:  # also pydantic's ValidationError and a body that is not UTF-8
        return Assessment(IpnVerdict.MALFORMED, None)
    if not alixpay.verify_ipn(provider):
        return Assessment(IpnVerdict.BAD_SIGNATURE, provider)
    return Assessment(None, provider)


@dataclass(frozen=True)
class Judged:
    verdict: IpnVerdict
    external_order_id: str | None = None
    provider_status: str | None = None


async def _judge(change: StatusChange, receipt_id: int, body: bytes, alixpay: AlixPayClient) -> Judged:
    assessment = assess(body, alixpay)
    provider = assessment.provider
    if assessment.refusal is not None or provider is None:
        verdict = assessment.refusal or IpnVerdict.MALFORMED
        return Judged(verdict, *((provider.external_order_id[:64], provider.status[:64]) if provider else ()))
    about = (provider.external_order_id[:64], provider.status[:64])
    order = await change.lock_by_external_id(provider.external_order_id)
    if order is None:
        return Judged(IpnVerdict.UNKNOWN_ORDER, *about)
    seen_before = await change.connection.execute(
        SEEN_BEFORE, {"dedupe_key": dedupe_key(body), "receipt_id": receipt_id}
    )
    if seen_before.first() is not None:
        return Judged(IpnVerdict.DUPLICATE, *about)
    change.update(order, last_ipn_at=utcnow())
    outcome = await change.apply_provider_order(order, provider, source="ipn", receipt_id=receipt_id)
    return Judged(IpnVerdict(outcome.value), *about)


async def process_pending(
    *, changes: StatusChanges, alixpay: AlixPayClient, grace: timedelta, retry: RetryPolicy
) -> int:
    """Finish receipts that a crash or restart interrupted, and try failed ones again when their backoff is over.

    Only unprocessed receipts older than `grace` count: a younger one is still being processed by the request
    that stored it (SQLite has no row locks to keep the two apart).
    """
    now = utcnow()
    async with changes.db_sessionmaker() as session:
        due = (
            await session.exec(
                select(IpnReceipt.id)
                .where(
                    or_(
                        and_(col(IpnReceipt.verdict).is_(None), col(IpnReceipt.received_at) <= now - grace),
                        and_(IpnReceipt.verdict == IpnVerdict.ERROR, col(IpnReceipt.next_attempt_at) <= now),
                    )
                )
                .order_by(col(IpnReceipt.id))
            )
        ).all()
    for receipt_id in due:
        await process(receipt_id, changes=changes, alixpay=alixpay, retry=retry)
    return len(due)


async def delete_junk_receipts(changes: StatusChanges, *, older_than: timedelta) -> int:
    """Retention: unreadable, unsigned and oversized receipts go after a while; any that touched an order stay."""
    async with changes.db_sessionmaker() as session, session.begin():
        result = await session.exec(  # type: ignore[call-overload]
            delete(IpnReceipt).where(
                col(IpnReceipt.verdict).in_(JUNK_VERDICTS), col(IpnReceipt.received_at) < utcnow() - older_than
            )
        )
        return int(result.rowcount or 0)
