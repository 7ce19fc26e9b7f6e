"""The composition root: every collaborator of the app built once from `Settings`, and wired here alone.

`build_services(settings)` makes the database, the HTTP clients, the Alix Pay client, the live channels, the owner
of status changes with its subscribers, the mailer, partner webhooks, the alarms and the background jobs.
`create_app` (app.py) only hands them to routes, middleware and plugins; tests build the same services, with the
settings they need, instead of repeating the wiring.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import httpx
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.stores.base import Store
from sqlalchemy.orm import configure_mappers

from webapp.activity.counts import count_activity, roll_up
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier
from webapp.auth.oidc import OidcClient
from webapp.auth.pending import CALLBACK_PATH
from webapp.config import Settings
from webapp.db import Database, provide_db_session
from webapp.embed.launch import delete_spent_tokens
from webapp.embed.outbox import partner_events
from webapp.embed.partners import PartnerSecrets
from webapp.embed.webhooks import WebhookSender
from webapp.ipn.intake import IpnIntake
from webapp.ipn.service import RetryPolicy, delete_junk_receipts, process_pending
from webapp.job_board import HEARTBEAT_SECONDS, ClusterLeases, JobBoard
from webapp.jobs import Job, JobHealth, running
from webapp.logs import instance_id
from webapp.metrics import observe_alixpay_call
from webapp.notifications.emails import PublicLinks
from webapp.notifications.mailer import Mailer
from webapp.notifications.outbox import queue_status_email
from webapp.operations.alarms import Alarms
from webapp.orders.live import LiveOrders, LivePublisher, make_channels
from webapp.orders.recipients import keep_recipient
from webapp.orders.reconcile import reconcile_once
from webapp.orders.storage import status_cards
from webapp.orders.transitions import StatusChanges
from webapp.partner_api.idempotency import forget_old_answers
from webapp.ratelimit_store import FLUSH_SECONDS, SharedCounterStore
from webapp.ratelimits import RATE_LIMIT_STORE
from webapp.sessions import DatabaseStore, end_expired_sessions
from webapp.stopping import when_asked_to_stop
from webapp.templating import make_template_engine


def alixpay_client(settings: Settings) -> AlixPayClient:
    alix = settings.alixpay
    return AlixPayClient(
        base_url=alix.base_url,
        partner_code=alix.partner_code,
        secret_key=alix.secret_key.get_secret_value(),
        webhook_secret_key=alix.webhook_secret_key.get_secret_value(),
        signer=Signer.from_file(alix.private_key_file),
        verifier=Verifier.from_files(alix.public_key_files),
        timeout=alix.timeout_seconds,
        ipn_secret=alix.ipn_secret,
        bank_code_style=alix.bank_code_style,
        on_call=observe_alixpay_call,
    )


def live_publisher(db: Database, channels: ChannelsPlugin) -> LivePublisher:
    """Live updates with the status cards of the changed orders, read on the autocommit engine."""
    return LivePublisher(channels, partial(status_cards, db.reader))


def status_changes(db: Database, live: LivePublisher, *, test_events: bool = False) -> StatusChanges:
    """The one owner of status changes, with every consequence subscribed (add a new one here).

    In the change's transaction: the partner's webhook event and the person's email (outboxes), the recipient of a
    paid-out cash-out kept for the next one, the activity charts' counts. After the commit:
    the live update of every page that shows the order.
    """
    return StatusChanges(
        db,
        on_change=[partner_events(test=test_events), queue_status_email, keep_recipient, count_activity],
        on_commit=[live],
    )


def _value(value: object) -> Callable[[], object]:
    def provide() -> object:
        return value

    return provide


@dataclass
class Services:
    settings: Settings
    db: Database
    alixpay: AlixPayClient
    channels: ChannelsPlugin
    changes: StatusChanges
    live_orders: LiveOrders
    live_publisher: LivePublisher
    """Sends each committed change's status card to every instance's watchers (`orders/live.py`)."""
    ipn_intake: IpnIntake
    oidc: OidcClient
    webhooks: WebhookSender
    partner_secrets: PartnerSecrets
    """Partners' secrets sealed at rest and, during a rotation, two at once (`embed/partners.py`)."""
    template_engine: JinjaTemplateEngine
    sessions: DatabaseStore
    counters: SharedCounterStore
    """The rate limits' counts (`ratelimit_store.py`): kept in the instance, added to the shared ones every second."""
    job_health: JobHealth = field(default_factory=JobHealth)
    board: JobBoard = field(init=False)
    """This instance on the job board (its id is `host:pid`: each worker of `serve --workers` is one)."""
    http_clients: list[httpx.AsyncClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.board = JobBoard(self.db.engine, instance_id())

    def dependencies(self) -> dict[str, Provide]:
        """What a handler gets by naming it: one provider per collaborator, built once."""
        given = {
            "settings": self.settings,
            "db_sessionmaker": self.db.sessionmaker,
            "db_reader": self.db.reader,
            "db_engine": self.db.engine,
            "oidc": self.oidc,
            "alixpay": self.alixpay,
            "changes": self.changes,
            "live_orders": self.live_orders,
            "ipn_intake": self.ipn_intake,
            "webhooks": self.webhooks,
            "partner_secrets": self.partner_secrets,
            "templates": self.template_engine.engine,
        }
        providers = {name: Provide(_value(value), sync_to_thread=False) for name, value in given.items()}
        return providers | {"db_session": Provide(provide_db_session)}

    def mailer(self, reverse: Callable[..., str]) -> Mailer | None:
        """The mailer, when `SMTP_URL` is set; its links name routes of the app (`reverse` is its `route_reverse`)."""
        settings = self.settings
        if settings.smtp_server is None:
            return None
        return Mailer(
            self.db.sessionmaker,
            settings.smtp_server,
            env=self.template_engine.engine,
            sender=settings.mail_from,
            links=PublicLinks(settings.public_base_url, reverse),
            support_contact=settings.support_contact_email or "",
        )

    def jobs(self, app: Litestar) -> list[Job]:
        """The background jobs of the app, each its own task (webapp/jobs.py)."""
        settings, db = self.settings, self.db
        retry = RetryPolicy.of(settings)
        grace = timedelta(seconds=settings.ipn_replay_grace_seconds)
        silence = timedelta(seconds=settings.reconcile_silence_seconds)
        retention = timedelta(days=settings.ipn_junk_retention_days)
        alarms = Alarms(
            db.sessionmaker,
            silence_after=timedelta(minutes=settings.alarm_ipn_silence_minutes),
            job_failures=settings.alarm_job_failures,
            webhook_url=settings.alarm_webhook_url,
        )
        background = {"db": db, "changes": self.changes, "alixpay": self.alixpay}
        every = settings.cleanup_interval_seconds
        mailer = self.mailer(app.route_reverse)
        mail = [Job("emails", settings.mail_interval_seconds, mailer.deliver_due)] if mailer else []
        return [
            *mail,
            Job(
                "ipn-replay",
                settings.ipn_replay_interval_seconds,
                partial(process_pending, **background, grace=grace, retry=retry),
            ),
            Job(
                "reconcile", settings.reconcile_interval_seconds, partial(reconcile_once, **background, silence=silence)
            ),
            Job("session-cleanup", every, partial(end_expired_sessions, self.sessions, self.channels)),
            Job("rate-limit-cleanup", every, self.counters.delete_expired),
            Job("ipn-retention", every, partial(delete_junk_receipts, db, older_than=retention)),
            Job("alarms", settings.alarm_interval_seconds, alarms.check),
            Job("audit-anchor", settings.audit_anchor_interval_seconds, alarms.anchor_audit_log),
            Job("activity-rollup", settings.activity_rollup_interval_seconds, partial(roll_up, db.engine)),
            Job("partner-webhooks", settings.webhook_interval_seconds, self.webhooks.deliver_due),
            Job("launch-tokens", every, partial(delete_spent_tokens, db.sessionmaker)),
            Job("idempotency-keys", every, partial(forget_old_answers, db.sessionmaker)),
        ]

    @contextlib.asynccontextmanager
    async def running(self, app: Litestar) -> AsyncIterator[None]:
        """The app's lifespan: the background jobs run while it serves; then every client and the pool close."""
        jobs = self.jobs(app) if self.settings.run_jobs else []
        beat = Job("heartbeat", HEARTBEAT_SECONDS, self.board.heartbeat, each_instance=True)  # also without jobs
        # Every instance counts its requests against the rate limits: each adds them to the shared counts.
        counts = Job("rate-limit-flush", FLUSH_SECONDS, self.counters.flush, each_instance=True, quiet=True)
        # Rounds are claimed across instances sharing PostgreSQL; SQLite serves one instance: no claims there.
        postgresql = self.db.engine.dialect.name == "postgresql"
        leases = ClusterLeases(self.db.engine, self.board.instance) if postgresql else None
        try:
            with when_asked_to_stop(self.live_orders.drain):
                async with (
                    self.live_publisher.running(),
                    running([*jobs, beat, counts], self.job_health, leases=leases, board=self.board),
                ):
                    yield
        finally:
            await self.aclose()

    @property
    def stores(self) -> dict[str, Store]:
        """Litestar's stores by name: sessions and rate-limit counters, shared through the database."""
        return {"sessions": self.sessions, RATE_LIMIT_STORE: self.counters}

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # the last second's hits, if the database still answers
            await self.counters.flush()
        await self.alixpay.aclose()
        await self.oidc.aclose()
        for client in self.http_clients:
            await client.aclose()
        await self.db.close()


def build_services(settings: Settings) -> Services:
    """Every collaborator, built once from the settings."""
    # The hot paths build orders without an ORM query (`orders/storage.py::loaded`), which needs the mappers
    # configured: an instance whose jobs all ran elsewhere (job board) may serve such a page before any query.
    configure_mappers()
    database = settings.database
    db = Database.connect(database.url, echo=database.echo, pool_size=database.pool_size)
    alixpay = alixpay_client(settings)
    channels = make_channels(database.url, settings.channels_redis_url)
    publisher = live_publisher(db, channels)
    changes = status_changes(db, publisher, test_events=not settings.is_production)
    webhook_http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    template_engine = make_template_engine()
    partner_secrets = PartnerSecrets.of(settings)
    return Services(
        settings=settings,
        db=db,
        alixpay=alixpay,
        channels=channels,
        changes=changes,
        live_orders=LiveOrders(channels),
        live_publisher=publisher,
        ipn_intake=IpnIntake(db, changes, alixpay, RetryPolicy.of(settings), settings.ipn_max_body_bytes),
        oidc=OidcClient(settings.oidc, redirect_uri=settings.public_base_url.rstrip("/") + CALLBACK_PATH),
        webhooks=WebhookSender(db.sessionmaker, webhook_http, partner_secrets),
        partner_secrets=partner_secrets,
        template_engine=template_engine,
        sessions=DatabaseStore(db.engine),
        counters=SharedCounterStore(db.engine),
        http_clients=[webhook_http],
    )
