"""Delivering partner webhook events from the outbox: signed, retried with backoff for three days, each try logged.

Claims and backoff are the shared outbox's (`webapp/outbox.py`). Delivery is at least once: a partner
deduplicates on the event id (`Cashout-Event-Id`).
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import utcnow
from webapp.embed.models import Partner, WebhookAttempt, WebhookEvent
from webapp.embed.partners import PartnerSecrets
from webapp.embed.signatures import SIGNATURE_HEADER, webhook_signature
from webapp.jobs import each_on_its_own, where_it_failed
from webapp.outbox import DeliveryPolicy, claim_due

logger = logging.getLogger(__name__)


def retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; anything else is ignored."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0)) if value else None
    except (TypeError, ValueError):
        return None


class WebhookSender:
    def __init__(
        self,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        secrets: PartnerSecrets,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self._sessionmaker = db_sessionmaker
        self._http = http
        self._secrets = secrets
        self.policy = policy or DeliveryPolicy()

    async def deliver_due(self) -> int:
        """One round: send every due event once. Returns how many were tried."""
        claimed = await claim_due(self._sessionmaker, WebhookEvent, self.policy)
        await each_on_its_own("partner-webhooks", claimed, self._deliver, self._failed)
        return len(claimed)

    async def _failed(self, event_id: int, exc: Exception) -> None:
        """Delivering raised (not an HTTP failure, which `_deliver` records): an attempt with where it failed."""
        await self._record(event_id, None, where_it_failed(exc), 0)

    async def _deliver(self, event_id: int) -> None:
        async with self._sessionmaker() as session:
            event = await session.get(WebhookEvent, event_id)
            partner = await session.get(Partner, event.partner_id) if event else None
        if event is None or partner is None or not partner.webhook_url:
            return
        body = event.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "Cashout-Event-Id": event.event_id,
            SIGNATURE_HEADER: webhook_signature(self._secrets.webhook_secrets(partner), body, int(time.time())),
        }
        started = time.perf_counter()
        response: httpx.Response | None = None
        error = ""
        try:
            response = await self._http.post(partner.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        await self._record(event_id, response, error, int((time.perf_counter() - started) * 1000))

    async def _record(self, event_id: int, response: httpx.Response | None, error: str, duration_ms: int) -> None:
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            event = await session.get(WebhookEvent, event_id)
            if event is None:
                return
            status = response.status_code if response is not None else None
            session.add(
                WebhookAttempt(event_id=event_id, at=now, status_code=status, error=error, duration_ms=duration_ms)
            )
            event.attempts += 1
            if status is not None and 200 <= status < 300:
                event.state, event.delivered_at, event.next_attempt_at = "delivered", now, None
            else:
                wait = retry_after(response, now) if response is not None else None
                event.next_attempt_at = self.policy.next_attempt(event, now, wait)
                if event.next_attempt_at is None:
                    event.state = "gave_up"
            logger.info(
                "webhook %s (%s) to partner %s: attempt %d, %s → %s",
                event.event_id,
                event.type,
                event.partner_id,
                event.attempts,
                status or error,
                event.state,
            )

    async def resend(self, session: AsyncSession, event_id: str) -> WebhookEvent | None:
        """Send the event with this id again at once (an admin's action), if there is one."""
        event = (await session.exec(select(WebhookEvent).where(WebhookEvent.event_id == event_id))).first()
        if event is not None:
            self.send_again(event)
        return event

    @staticmethod
    def send_again(event: WebhookEvent) -> None:
        """Due at the next delivery round, whatever became of it before.

        Past its three days, a failed re-send is not retried: it is one more try, not a new schedule.
        """
        event.state, event.next_attempt_at = "pending", utcnow()


@dataclass(frozen=True)
class LoggedEvent:
    event: WebhookEvent
    attempts: list[WebhookAttempt]


async def delivery_log(session: AsyncSession, partner_id: int, *, limit: int = 50) -> list[LoggedEvent]:
    """A partner's newest events, each with every attempt made to deliver it."""
    events = (
        await session.exec(
            select(WebhookEvent)
            .where(WebhookEvent.partner_id == partner_id)
            .order_by(col(WebhookEvent.id).desc())
            .limit(limit)
        )
    ).all()
    attempts = await attempts_of(session, [event.id or 0 for event in events])
    return [LoggedEvent(event, attempts.get(event.id or 0, [])) for event in events]


async def attempts_of(session: AsyncSession, event_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """Every attempt to deliver each of these events, oldest first, by event id."""
    query = select(WebhookAttempt).where(col(WebhookAttempt.event_id).in_(event_ids)).order_by(col(WebhookAttempt.id))
    found: dict[int, list[WebhookAttempt]] = {}
    for attempt in (await session.exec(query)).all():
        found.setdefault(attempt.event_id, []).append(attempt)
    return found
