"""IPN processing, one committed step at a time: store raw → verify → parse → check → dedupe → apply → publish.

The raw receipt is committed before anything else, so nothing received is ever lost. Receipts are stored and
judged a batch at a time (one receipt when it came alone, see `ipn/intake.py`), in the order they were received.
Every receipt gets a verdict, whatever it contains: input is parsed with bounded cost (`alixpay/parsing.py`), and
any exception while judging is recorded on the receipt (`error`) and tried again with backoff until it is `parked`
for a person. A receipt whose processing was interrupted is processed again by the replay job (`process_pending`).
"""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import and_, col, or_, select

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.parsing import parse_json
from webapp.alixpay.schemas import OrderObject
from webapp.config import Settings
from webapp.db import Database, in_utc, utcnow
from webapp.i18n import N_
from webapp.ipn.models import IpnReceipt
from webapp.jobs import each_on_its_own, where_it_failed
from webapp.logs import about_order
from webapp.metrics import IPN_RECEIPTS
from webapp.orders.state import Verdict
from webapp.orders.transitions import OrderUnit, StatusChanges
from webapp.sql_runner import among, standalone

logger = logging.getLogger(__name__)


class IntakeVerdict(StrEnum):
    """What became of a delivery that never reached an order as a status report (`Verdict` names what did)."""

    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_ORDER = "unknown_order"
    TOO_LARGE = "too_large"
    ERROR = "error"
    PARKED = "parked"


IpnVerdict = Verdict | IntakeVerdict
IPN_VERDICTS: tuple[IpnVerdict, ...] = (*Verdict, *IntakeVerdict)
VERDICT_OF_WORD: dict[str, IpnVerdict] = {verdict.value: verdict for verdict in IPN_VERDICTS}
"""A stored verdict word back as its verdict."""


for _verdict in IPN_VERDICTS:  # every verdict exported from the start, at 0 (Prometheus sees no gaps)
    IPN_RECEIPTS.labels(_verdict.value)

VERDICT_LABELS = {
    Verdict.APPLIED: N_("applied"),
    Verdict.DUPLICATE: N_("duplicate, ignored"),
    Verdict.STALE: N_("older than what we knew, ignored"),
    Verdict.MISMATCH: N_("does not match the order, not applied"),
    IntakeVerdict.BAD_SIGNATURE: N_("bad signature, not applied"),
    IntakeVerdict.MALFORMED: N_("unreadable, not applied"),
    IntakeVerdict.UNKNOWN_ORDER: N_("unknown order"),
    Verdict.UNKNOWN_STATUS: N_("unknown status, not applied"),
    IntakeVerdict.TOO_LARGE: N_("too large, not applied"),
    IntakeVerdict.ERROR: N_("processing failed, will be retried"),
    IntakeVerdict.PARKED: N_("processing kept failing, needs a person"),
}
"""How each verdict reads to a person (support's timeline)."""

# What Alix Pay hears back: 2xx stops its retries, anything else asks for another delivery. A mismatch is
# acknowledged: delivering the same signed body again cannot help, a person has to look at it.
HTTP_STATUS = {
    Verdict.APPLIED: 200,
    Verdict.DUPLICATE: 200,
    Verdict.STALE: 200,
    Verdict.UNKNOWN_STATUS: 200,
    Verdict.MISMATCH: 200,
    IntakeVerdict.BAD_SIGNATURE: 400,
    IntakeVerdict.MALFORMED: 400,
    IntakeVerdict.UNKNOWN_ORDER: 404,
    IntakeVerdict.TOO_LARGE: 413,
    IntakeVerdict.ERROR: 500,
    IntakeVerdict.PARKED: 500,
}
JUNK_VERDICTS = (IntakeVerdict.MALFORMED, IntakeVerdict.BAD_SIGNATURE, IntakeVerdict.TOO_LARGE)
"""Receipts that never concerned an order we can trust: deleted after the retention period."""
KEPT_HEADERS = ("content-type", "content-length", "date", "user-agent", "x-forwarded-for", "x-request-id")


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


def reported_after(received_at: datetime, headers: dict[str, str]) -> timedelta | None:
    """How long an IPN took from Alix Pay to our storing it, or None when it does not say when it was sent.

    Alix Pay's IPN body carries no time of its status change (CONTRACT.md §2.3), so the send time is the HTTP
    `Date` header (RFC 9110 §6.6.1), whole seconds: a delay reads up to a second long. A clock ahead of ours
    reads as no delay. The one place this is decided (the IPN delay chart counts it, `activity/counts.py`).
    """
    stamp = next((value for name, value in headers.items() if name.lower() == "date"), None)
    try:
        sent = parsedate_to_datetime(stamp) if stamp else None
    except (TypeError, ValueError):
        return None
    if sent is None or sent.tzinfo is None:
        return None
    return max(in_utc(received_at) - sent, timedelta())


def dedupe_key(body: bytes) -> str:
    """The same notification delivered again has the same key."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One IPN as it came: the body (up to the cap), the headers, where from, and whether there was more."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    source_address: str | None = None
    too_large: bool = False


RECEIPTS = IpnReceipt.__table__
INSERT_RECEIPTS = insert(RECEIPTS).returning(RECEIPTS.c.id, sort_by_parameter_order=True)


async def store_raw(db: Database, *deliveries: Delivery) -> list[int]:
    """Commit the receipts exactly as received, in one statement, and return their ids in the same order.

    An oversized body is kept up to the cap and gets its verdict at once.
    """
    rows = [
        {
            "body": delivery.body,
            "body_size": len(delivery.body),
            "headers": {name: value for name, value in delivery.headers.items() if name.lower() in KEPT_HEADERS},
            "source_address": delivery.source_address,
            "dedupe_key": dedupe_key(delivery.body),
            "verdict": IntakeVerdict.TOO_LARGE.value if delivery.too_large else None,
            "processed_at": utcnow() if delivery.too_large else None,
        }
        for delivery in deliveries
    ]
    async with standalone(db.reader) as sql:
        receipt_ids = [row["id"] for row in await sql.write(INSERT_RECEIPTS, rows)]
    for delivery in deliveries:
        if delivery.too_large:
            IPN_RECEIPTS.labels(IntakeVerdict.TOO_LARGE.value).inc()
    return [int(receipt_id) for receipt_id in receipt_ids]


AMONG_RECEIPTS = among(RECEIPTS.c.id, "ids")
UNJUDGED = or_(RECEIPTS.c.verdict.is_(None), RECEIPTS.c.verdict == IntakeVerdict.ERROR)
CLAIM = (
    select(RECEIPTS.c.id, RECEIPTS.c.body, RECEIPTS.c.dedupe_key, RECEIPTS.c.received_at, RECEIPTS.c.headers)
    .where(AMONG_RECEIPTS, UNJUDGED)
    .order_by(RECEIPTS.c.id)
    .with_for_update()
)
"""The unjudged ones of some receipts, held until their verdicts are written: of two processors (a request and a
replay, or two instances) one judges a receipt and the other finds it judged."""
TOUCH_RECEIPTS = update(RECEIPTS).where(AMONG_RECEIPTS).values(attempts=RECEIPTS.c.attempts)
VERDICTS = select(RECEIPTS.c.id, RECEIPTS.c.verdict).where(AMONG_RECEIPTS)
RECORD_VERDICT = update(RECEIPTS).where(RECEIPTS.c.id == bindparam("receipt_id"))
"""The verdict's columns come as the other parameters."""
SEEN_VERDICTS = (Verdict.APPLIED, Verdict.DUPLICATE, Verdict.STALE)
DELIVERIES_OF_KEYS = select(RECEIPTS.c.dedupe_key, RECEIPTS.c.verdict).where(among(RECEIPTS.c.dedupe_key, "keys"))
"""Every receipt of some bodies, whatever its verdict: the verdicts are sorted here, not in SQL. A key has a receipt
per delivery while a verdict has nearly all receipts, yet PostgreSQL planned a verdict condition onto the verdict
index on tables it had not analysed yet, reading every applied receipt for each batch (docs/PERFORMANCE.md)."""
BATCH_SIZE = 64
"""Receipts judged in one transaction at most (`IpnIntake`, `process_pending`)."""


@dataclass(frozen=True)
class Assessment:
    """What a body says before it touches any order: unreadable, not signed by Alix Pay, or a signed order object."""

    refusal: IntakeVerdict | None
    provider: OrderObject | None


def assess(body: bytes, alixpay: AlixPayClient) -> Assessment:
    try:
        provider = OrderObject.model_validate(parse_json(body))
    except ValueError:  # also pydantic's ValidationError and a body that is not UTF-8
        return Assessment(IntakeVerdict.MALFORMED, None)
    if not alixpay.verify_ipn(provider):
        return Assessment(IntakeVerdict.BAD_SIGNATURE, provider)
    return Assessment(None, provider)


@dataclass(frozen=True)
class Judged:
    verdict: IpnVerdict
    external_order_id: str | None = None
    provider_status: str | None = None


async def _judge(
    change: OrderUnit, receipt_id: int, assessment: Assessment, *, seen_before: bool, delay: timedelta | None
) -> Judged:
    provider = assessment.provider
    if assessment.refusal is not None or provider is None:
        verdict = assessment.refusal or IntakeVerdict.MALFORMED
        return Judged(verdict, *((provider.external_order_id[:64], provider.status[:64]) if provider else ()))
    about = (provider.external_order_id[:64], provider.status[:64])
    order = await change.lock_by_external_id(provider.external_order_id)
    if order is None:
        return Judged(IntakeVerdict.UNKNOWN_ORDER, *about)
    if seen_before:
        return Judged(Verdict.DUPLICATE, *about)
    change.update(order, last_ipn_at=utcnow())
    outcome = await change.apply_provider_order(
        order, provider, source="ipn", receipt_id=receipt_id, reported_after=delay
    )
    return Judged(outcome, *about)


async def process_many(
    receipt_ids: Sequence[int], *, db: Database, changes: StatusChanges, alixpay: AlixPayClient, retry: RetryPolicy
) -> dict[int, Judged]:
    """Decide and record the receipts' verdicts in one transaction, applying them to their orders, in receipt order.

    A receipt another processor judged first keeps that verdict. When judging raises, the transaction is rolled
    back and each receipt is judged again on its own, so only the one that raises records the failure.
    """
    try:
        judged = await _judge_all(changes, receipt_ids, alixpay)
    except Exception as exc:
        if len(receipt_ids) == 1:
            return {receipt_ids[0]: Judged(await _record_failure(db, receipt_ids[0], exc, retry))}
        alone: dict[int, Judged] = {}
        for receipt_id in receipt_ids:
            alone |= await process_many([receipt_id], db=db, changes=changes, alixpay=alixpay, retry=retry)
        return alone
    for outcome in judged.values():
        IPN_RECEIPTS.labels(outcome.verdict.value).inc()
    if judged_elsewhere := [receipt_id for receipt_id in receipt_ids if receipt_id not in judged]:
        async with standalone(db.reader) as sql:
            stored = await sql.rows(VERDICTS, {"ids": judged_elsewhere})
        judged |= {row["id"]: Judged(VERDICT_OF_WORD[row["verdict"]]) for row in stored}
    return judged


def log_verdict(receipt_id: int, judged: Judged) -> None:
    """The line each receipt gets, logged by whoever waited for it (the request, with its id, or the replay)."""
    with about_order(judged.external_order_id):
        logger.info("IPN receipt %s: %s", receipt_id, judged.verdict.value)


async def _judge_all(changes: StatusChanges, receipt_ids: Sequence[int], alixpay: AlixPayClient) -> dict[int, Judged]:
    """The verdicts of the receipts this unit could claim, recorded in it (a few statements for the lot)."""
    async with changes.unit() as change:
        claimed = await change.hold(CLAIM, {"ids": list(receipt_ids)}, touch=TOUCH_RECEIPTS)
        assessed = [
            (
                row["id"],
                row["dedupe_key"],
                assess(row["body"], alixpay),
                reported_after(row["received_at"], row["headers"]),
            )
            for row in claimed
        ]
        signed = {
            key: assessment.provider
            for _, key, assessment, _ in assessed
            if assessment.refusal is None and assessment.provider
        }
        await change.lock_all([provider.external_order_id for provider in signed.values()])
        deliveries = await change.sql.rows(DELIVERIES_OF_KEYS, {"keys": list(signed)}) if signed else []
        seen = {row["dedupe_key"] for row in deliveries if row["verdict"] in SEEN_VERDICTS}
        judged: dict[int, Judged] = {}
        for receipt_id, key, assessment, delay in assessed:
            outcome = await _judge(change, receipt_id, assessment, seen_before=key in seen, delay=delay)
            if outcome.verdict in SEEN_VERDICTS:
                seen.add(key)
            change.add(
                RECORD_VERDICT,
                {
                    "receipt_id": receipt_id,
                    "verdict": outcome.verdict.value,
                    "processed_at": utcnow(),
                    "next_attempt_at": None,
                    "external_order_id": outcome.external_order_id,
                    "provider_status": outcome.provider_status,
                },
            )
            judged[receipt_id] = outcome
    return judged


async def _record_failure(db: Database, receipt_id: int, exc: Exception, retry: RetryPolicy) -> IpnVerdict:
    """Judging raised: the receipt keeps its body and gets `error` (tried again later) or, at last, `parked`."""
    error = where_it_failed(exc)
    async with db.sessionmaker() as session, session.begin():
        receipt = await session.get(IpnReceipt, receipt_id)
        if receipt is None:
            raise LookupError(f"no IPN receipt {receipt_id}") from None
        receipt.attempts += 1
        receipt.last_error = error
        if receipt.attempts >= retry.max_attempts:
            verdict, receipt.processed_at, receipt.next_attempt_at = IntakeVerdict.PARKED, utcnow(), None
        else:
            verdict, receipt.next_attempt_at = IntakeVerdict.ERROR, utcnow() + retry.next_delay(receipt.attempts)
        receipt.verdict = verdict.value
        attempts = receipt.attempts
    IPN_RECEIPTS.labels(verdict.value).inc()
    logger.error("IPN receipt %s: %s while judging (attempt %s): %s", receipt_id, error, attempts, verdict.value)
    return verdict


async def process_pending(
    *, db: Database, changes: StatusChanges, alixpay: AlixPayClient, grace: timedelta, retry: RetryPolicy
) -> int:
    """Finish receipts that a crash or restart interrupted, and try failed ones again when their backoff is over.

    Only unprocessed receipts older than `grace` count: a younger one is still being processed by the request
    that stored it (SQLite has no row locks to keep the two apart).
    """
    now = utcnow()
    async with db.sessionmaker() as session:
        due = (
            await session.exec(
                select(IpnReceipt.id)
                .where(
                    or_(
                        and_(col(IpnReceipt.verdict).is_(None), col(IpnReceipt.received_at) <= now - grace),
                        and_(IpnReceipt.verdict == IntakeVerdict.ERROR, col(IpnReceipt.next_attempt_at) <= now),
                    )
                )
                .order_by(col(IpnReceipt.id))
            )
        ).all()

    async def judge(batch: Sequence[int]) -> None:
        for receipt_id, outcome in (
            await process_many(batch, db=db, changes=changes, alixpay=alixpay, retry=retry)
        ).items():
            log_verdict(receipt_id, outcome)

    await each_on_its_own(
        "ipn-replay", (due[first : first + BATCH_SIZE] for first in range(0, len(due), BATCH_SIZE)), judge
    )
    return len(due)


async def delete_junk_receipts(db: Database, *, older_than: timedelta) -> int:
    """Retention: unreadable, unsigned and oversized receipts go after a while; any that touched an order stay."""
    async with db.sessionmaker() as session, session.begin():
        result = await session.exec(  # type: ignore[call-overload]
            delete(IpnReceipt).where(
                col(IpnReceipt.verdict).in_(JUNK_VERDICTS), col(IpnReceipt.received_at) < utcnow() - older_than
            )
        )
        return int(result.rowcount or 0)
