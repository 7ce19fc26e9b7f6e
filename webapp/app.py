"""`create_app(settings)`: the only place that wires routes, plugins, middleware, templates, CSRF and sessions."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from webapp import health, home, i18n
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier
from webapp.auth.guards import csrf_bound_to_session
from webapp.auth.oidc import OidcClient
from webapp.auth.routes import AuthController
from webapp.config import Settings
from webapp.db import autocommit, make_engine, make_sessionmaker, provide_db_session
from webapp.embed.admin import PartnerAdminController
from webapp.embed.launch import delete_spent_tokens
from webapp.embed.routes import embed_router
from webapp.embed.webhooks import WebhookSender
from webapp.errors import handle_exception
from webapp.flows import EMBED_PREFIX
from webapp.ipn.intake import IpnIntake
from webapp.ipn.routes import IPN_PATH, receive_ipn
from webapp.ipn.service import RetryPolicy, delete_junk_receipts, process_pending
from webapp.jobs import Job, JobHealth, running
from webapp.logs import with_request_id
from webapp.metrics import observe_alixpay_call
from webapp.notifications.mailer import Mailer
from webapp.notifications.routes import NotificationPreferences
from webapp.operations import routes as operations
from webapp.operations.alarms import Alarms
from webapp.orders.live import LIVE_STREAM, LiveOrders, make_channels
from webapp.orders.reconcile import reconcile_once
from webapp.orders.routes import OrderController
from webapp.orders.transitions import StatusChanges
from webapp.ratelimits import RATE_LIMIT_STORE, exempt_other_routes, rate_limit_configs
from webapp.security_headers import security_headers
from webapp.sessions import SESSION_COOKIE, DatabaseStore, LazySessionConfig, RateLimitCounter
from webapp.support.routes import SupportController
from webapp.templating import TEMPLATES_DIR, make_template_engine

STATIC_DIR = TEMPLATES_DIR.parent / "static"


def alixpay_client(settings: Settings) -> AlixPayClient:
    return AlixPayClient(
        base_url=settings.alixpay.base_url,
        partner_code=settings.alixpay.partner_code,
        secret_key=settings.alixpay.secret_key.get_secret_value(),
        webhook_secret_key=settings.alixpay.webhook_secret_key.get_secret_value(),
        signer=Signer.from_file(settings.alixpay.private_key_file),
        verifier=Verifier.from_files(settings.alixpay.public_key_files),
        timeout=settings.alixpay.timeout_seconds,
        ipn_secret=settings.alixpay.ipn_secret,
        bank_code_style=settings.alixpay.bank_code_style,
        on_call=observe_alixpay_call,
    )


def background_jobs(
    settings: Settings,
    *,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    session_store: DatabaseStore,
    rate_limit_store: DatabaseStore,
    webhooks: WebhookSender,
    mailer: Mailer | None,
    health: JobHealth,
) -> list[Job]:
    retry = RetryPolicy.of(settings)
    grace = timedelta(seconds=settings.ipn_replay_grace_seconds)
    silence = timedelta(seconds=settings.reconcile_silence_seconds)
    retention = timedelta(days=settings.ipn_junk_retention_days)
    alarms = Alarms(
        changes.db_sessionmaker,
        health=health,
        silence_after=timedelta(minutes=settings.alarm_ipn_silence_minutes),
        job_failures=settings.alarm_job_failures,
        webhook_url=settings.alarm_webhook_url,
    )
    mail = [Job("emails", settings.mail_interval_seconds, mailer.deliver_due)] if mailer else []
    return [
        *mail,
        Job(
            "ipn-replay",
            settings.ipn_replay_interval_seconds,
            lambda: process_pending(changes=changes, alixpay=alixpay, grace=grace, retry=retry),
        ),
        Job(
            "reconcile",
            settings.reconcile_interval_seconds,
            lambda: reconcile_once(changes=changes, alixpay=alixpay, silence=silence),
        ),
        Job("session-cleanup", settings.cleanup_interval_seconds, session_store.delete_expired),
        Job("rate-limit-cleanup", settings.cleanup_interval_seconds, rate_limit_store.delete_expired),
        Job(
            "ipn-retention",
            settings.cleanup_interval_seconds,
            lambda: delete_junk_receipts(changes, older_than=retention),
        ),
        Job("alarms", settings.alarm_interval_seconds, alarms.check),
        Job("partner-webhooks", settings.webhook_interval_seconds, webhooks.deliver_due),
        Job("launch-tokens", settings.cleanup_interval_seconds, lambda: delete_spent_tokens(changes.db_sessionmaker)),
    ]


async def freeze_startup_heap() -> None:
    """Put what the process built before serving out of the cyclic garbage collector's sight.

    It lives as long as the process, yet every full collection walked all of it with the event loop stopped: ~100 ms
    here, the p99 of IPN acknowledgements under load. Frozen, a full collection takes ~6 ms (docs/PERFORMANCE.md).
    """
    gc.collect()
    gc.freeze()


def create_served_app(settings: Settings | None = None) -> Litestar:
    """The app of one server process (`python -m webapp serve`, each of its workers)."""
    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)
    return app


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings()
    engine = make_engine(settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size)
    db_sessionmaker = make_sessionmaker(engine)
    db_reader = autocommit(engine)
    secure_cookies = settings.is_production
    alixpay = alixpay_client(settings)
    channels = make_channels(settings.database.url, settings.channels_redis_url)
    changes = StatusChanges(db_sessionmaker, channels)
    live_orders = LiveOrders(channels)
    ipn_intake = IpnIntake(changes, alixpay, RetryPolicy.of(settings), settings.ipn_max_body_bytes)
    session_store = DatabaseStore(engine)
    rate_limit_store = DatabaseStore(engine, RateLimitCounter)
    oidc = OidcClient(settings.oidc, redirect_uri=f"{settings.public_base_url.rstrip('/')}/auth/callback")
    webhook_http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    webhooks = WebhookSender(db_sessionmaker, webhook_http)
    template_engine = make_template_engine()
    smtp = settings.smtp_server
    mailer = (
        Mailer(
            db_sessionmaker,
            smtp,
            env=template_engine.engine,
            sender=settings.mail_from,
            base_url=settings.public_base_url,
            support_contact=settings.support_contact_email or "",
        )
        if smtp
        else None
    )
    job_health = JobHealth()
    jobs = background_jobs(
        settings,
        changes=changes,
        alixpay=alixpay,
        session_store=session_store,
        rate_limit_store=rate_limit_store,
        webhooks=webhooks,
        mailer=mailer,
        health=job_health,
    )

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            async with running(jobs, job_health):
                yield
        finally:
            await alixpay.aclose()
            await oidc.aclose()
            await webhook_http.aclose()
            await engine.dispose()

    session_config = LazySessionConfig(
        key=SESSION_COOKIE,
        store="sessions",
        max_age=settings.session.idle_timeout_seconds,
        renew_on_access=True,
        httponly=True,
        samesite="lax",
        secure=secure_cookies,
        # Embedded pages have their own session cookie (embed/routes.py).
        exclude=[IPN_PATH, "/healthz", "/readyz", "/static/", operations.METRICS_PATH, f"^{EMBED_PREFIX}/"],
    )
    csrf_config = CSRFConfig(
        secret=settings.session.secret.get_secret_value(),
        cookie_secure=secure_cookies,
        cookie_samesite="lax",
        # Embedded pages check a token kept in their session: this cookie is not sent inside a partner's frame.
        exclude=["/healthz", "/readyz", f"^{EMBED_PREFIX}/"],
    )
    # Request counts and latency per route template (bounded labels: never a path with an order id in it).
    http_metrics = PrometheusConfig(
        app_name="cashout",
        prefix="cashout_http",
        group_path=True,
        exclude=[operations.METRICS_PATH, "/static"],
        exclude_opt_key=LIVE_STREAM,
    )
    app = Litestar(
        route_handlers=[
            home.index,
            home.system_status,
            health.healthz,
            health.readyz,
            AuthController,
            OrderController,
            SupportController,
            NotificationPreferences,
            PartnerAdminController,
            embed_router(settings),
            operations.metrics,
            operations.operations_page,
            operations.operations_overview,
            receive_ipn,
            create_static_files_router(path="/static", directories=[STATIC_DIR], name="static"),
        ],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "db_sessionmaker": Provide(lambda: db_sessionmaker, sync_to_thread=False),
            "db_session": Provide(provide_db_session),
            "db_reader": Provide(lambda: db_reader, sync_to_thread=False),
            "oidc": Provide(lambda: oidc, sync_to_thread=False),
            "alixpay": Provide(lambda: alixpay, sync_to_thread=False),
            "changes": Provide(lambda: changes, sync_to_thread=False),
            "live_orders": Provide(lambda: live_orders, sync_to_thread=False),
            "ipn_intake": Provide(lambda: ipn_intake, sync_to_thread=False),
            "job_health": Provide(lambda: job_health, sync_to_thread=False),
            "webhooks": Provide(lambda: webhooks, sync_to_thread=False),
        },
        guards=[csrf_bound_to_session],
        plugins=[HTMXPlugin(), channels],
        template_config=TemplateConfig(instance=template_engine),
        csrf_config=csrf_config,
        middleware=[
            session_config.middleware,
            http_metrics.middleware,
            *(limit.middleware for limit in rate_limit_configs(settings)),
        ],
        # Sessions and rate-limit counters in the database: every instance shares them.
        stores={"sessions": session_store, RATE_LIMIT_STORE: rate_limit_store},
        exception_handlers={Exception: handle_exception},
        before_send=[security_headers(hsts=settings.is_production), i18n.remember_chosen_locale],
        # The API schema describes our internals; development only.
        openapi_config=None if settings.is_production else OpenAPIConfig(title="Cash-out dashboard", version="1"),
        lifespan=[lifespan],
        state=State({"settings": settings, "db_sessionmaker": db_sessionmaker}),
        # Logging is the process's business (`python -m webapp serve` sets it up); we log errors ourselves.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )
    exempt_other_routes(app, settings)
    app.asgi_handler = with_request_id(app.asgi_handler, trust_header=settings.trust_request_id_header)
    return app
