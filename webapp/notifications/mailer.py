"""Sending the email outbox over SMTP: claimed like every outbox, retried with backoff, never sent twice on purpose.

A mail is marked sent in the same step that learns the SMTP server accepted it. Only a crash between the two can
send it again, and then with the same `Message-ID`, which mail clients use to drop the copy.

Each mail is handled on its own: one that cannot be built (or whose sending raises) keeps its error class, is
tried again with backoff and, after `DeliveryPolicy.park_after` tries, is parked for a person (support's timeline
shows it, the operations alarm fires); every other mail of the round is still sent.
"""

import logging
from email.message import EmailMessage as MimeMessage

import aiosmtplib
from jinja2 import Environment
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User
from webapp.config import SmtpServer
from webapp.db import utcnow
from webapp.jobs import each_on_its_own, where_it_failed
from webapp.metrics import MAIL_FAILURES
from webapp.notifications.emails import PublicLinks, compose
from webapp.notifications.kinds import KINDS
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order
from webapp.outbox import DeliveryPolicy, claim_due

logger = logging.getLogger(__name__)


class Mailer:
    def __init__(
        self,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        server: SmtpServer,
        *,
        env: Environment,
        sender: str,
        links: PublicLinks,
        support_contact: str = "",
        policy: DeliveryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._support_contact = support_contact
        self._sessionmaker = db_sessionmaker
        self._server = server
        self._env = env
        self._sender = sender
        self._links = links
        self.policy = policy or DeliveryPolicy()
        self._timeout = timeout

    async def deliver_due(self) -> int:
        """One round: try every due mail once. Returns how many were tried."""
        claimed = await claim_due(self._sessionmaker, EmailMessage, self.policy)
        await each_on_its_own("emails", claimed, self._deliver, self._failed)
        return len(claimed)

    async def _deliver(self, message_id: int) -> None:
        """Compose in one short transaction, send with none open, record the outcome in another."""
        async with self._sessionmaker() as session, session.begin():
            message = await session.get(EmailMessage, message_id)
            order = await session.get(Order, message.order_id) if message else None
            if message is None or order is None or message.state != "pending":
                return
            user = await session.get(User, order.user_id)
            if not KINDS[message.kind].essential and user is not None and not user.email_updates:
                message.state, message.next_attempt_at = "opted_out", None
                logger.info("email %s (%s): not sent, the person turned progress emails off", message.id, message.kind)
                return
            if user is not None and user.locale:  # the language the person chose last, wherever they chose it
                message.locale = user.locale
            mail = compose(
                message,
                order,
                env=self._env,
                sender=self._sender,
                links=self._links,
                support_contact=self._support_contact,
            )
        error, permanent = await self._send(mail)
        await self._record(message_id, str(mail["Subject"]), error, permanent=permanent)

    async def _failed(self, message_id: int, exc: Exception) -> None:
        """Building or sending the mail raised: kept with where it failed, tried again later, parked at the limit."""
        async with self._sessionmaker() as session, session.begin():
            message = await session.get(EmailMessage, message_id)
            if message is None:
                return
            message.attempts += 1
            message.last_error = where_it_failed(exc)
            message.next_attempt_at = (
                self.policy.next_attempt(message, utcnow()) if message.attempts < self.policy.park_after else None
            )
            if message.next_attempt_at is None:
                message.state = "parked"
            MAIL_FAILURES.labels(message.kind, "build").inc()
            logger.error(
                "email %s (%s) for order %s: attempt %d, %s → %s",
                message.id,
                message.kind,
                message.order_id,
                message.attempts,
                message.last_error,
                message.state,
            )

    async def _record(self, message_id: int, subject: str, error: str, *, permanent: bool) -> None:
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            message = await session.get(EmailMessage, message_id)
            if message is None:
                return
            message.subject, message.attempts = subject[:200], message.attempts + 1
            if not error:
                message.state, message.sent_at, message.next_attempt_at, message.last_error = "sent", now, None, ""
            else:
                MAIL_FAILURES.labels(message.kind, "send").inc()
                message.last_error = error[:200]
                message.next_attempt_at = None if permanent else self.policy.next_attempt(message, now)
                if message.next_attempt_at is None:
                    message.state = "rejected" if permanent else "gave_up"
            logger.info(
                "email %s (%s) for order %s: attempt %d, %s%s",
                message.id,
                message.kind,
                message.order_id,
                message.attempts,
                f"{error} → " if error else "",
                message.state,
            )

    async def _send(self, mail: MimeMessage) -> tuple[str, bool]:
        """Hand the mail to the SMTP server: ('', False) when accepted, else (what went wrong, whether for good)."""
        server = self._server
        try:
            await aiosmtplib.send(
                mail,
                hostname=server.host,
                port=server.port,
                use_tls=server.use_tls,
                start_tls=server.start_tls,
                username=server.username,
                password=server.password,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as refusal:
            return f"SMTP {refusal.code} {type(refusal).__name__}", refusal.code >= 500
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [recipient.code for recipient in refused.recipients]
            return f"SMTP {','.join(map(str, codes))} {type(refused).__name__}", all(code >= 500 for code in codes)
        except (aiosmtplib.SMTPException, OSError) as failure:
            return type(failure).__name__, False
        return "", False
