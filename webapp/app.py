"""`create_app(settings, services)`: routes, middleware, plugins and templates wired to the services it is given.

Every collaborator is built in `services.py` (the composition root); here they are only handed to Litestar.
"""

import gc
import logging

from litestar import Litestar
from litestar.datastructures import State
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from webapp import health, home, i18n
from webapp.activity.routes import activity_charts
from webapp.auth.guards import csrf_bound_to_session
from webapp.auth.language import remember_language
from webapp.auth.middleware import authentication
from webapp.auth.routes import AuthController
from webapp.auth.session import session_owner
from webapp.config import Settings
from webapp.csrf import csrf_middleware
from webapp.embed.admin import PartnerAdminController
from webapp.embed.routes import embed_router
from webapp.errors import EXCEPTION_HANDLERS
from webapp.flows import EMBED_PREFIX
from webapp.ipn.routes import IPN_PATH, ipn_receiver
from webapp.logs import SECRET_QUERY, configure_logging, redact_queries_on, with_request_id
from webapp.metrics import worker_stopped
from webapp.notifications.routes import NotificationPreferences
from webapp.operations import routes as operations
from webapp.orders.live import LIVE_STREAM
from webapp.orders.recipient_pages import RecipientPages
from webapp.orders.routes import OrderController
from webapp.partner_api import openapi as partner_api_openapi
from webapp.partner_api.admin import ApiKeyAdminController
from webapp.partner_api.problems import API_PREFIX
from webapp.partner_api.router import partner_api_router
from webapp.ratelimits import exempt_other_routes, rate_limit_configs
from webapp.rendering import TEMPLATES_DIR
from webapp.request_metrics import RequestMetrics
from webapp.security_headers import security_headers
from webapp.services import Services, build_services
from webapp.sessions import SESSION_COOKIE, LazySessionConfig
from webapp.streaming import outside_the_stack
from webapp.support.routes import SupportController
from webapp.support.work import WorkController

STATIC_DIR = TEMPLATES_DIR.parent / "static"
NO_SESSION = [IPN_PATH, "/healthz", "/readyz", "/static/", health.METRICS_PATH, f"^{EMBED_PREFIX}/", f"^{API_PREFIX}/"]
"""Routes without our session cookie: Alix Pay's, probes, files, metrics, the partner API (an API key instead);
embedded pages have their own."""
ROUTES: list[ControllerRouterHandler] = [
    home.index,
    home.system_status,
    health.healthz,
    health.readyz,
    AuthController,
    OrderController,
    SupportController,
    WorkController,
    NotificationPreferences,
    RecipientPages,
    PartnerAdminController,
    health.metrics,
    operations.operations_page,
    operations.operations_overview,
    activity_charts,
    ApiKeyAdminController,
    partner_api_openapi.openapi_document,
    partner_api_openapi.docs_page,
    create_static_files_router(path="/static", directories=[STATIC_DIR], name="static"),
]


def middleware(settings: Settings) -> list[DefineMiddleware | RequestMetrics]:
    """Sessions, the person on `request.user`, request metrics, rate limits.

    Request metrics are counted per route template, never per path with an order id in it.
    """
    sessions = LazySessionConfig(
        key=SESSION_COOKIE,
        store="sessions",
        max_age=settings.session.idle_timeout_seconds,
        renew_on_access=True,
        httponly=True,
        samesite="lax",
        secure=settings.is_production,
        exclude=NO_SESSION,
        owner_of=session_owner,
    )
    return [
        sessions.middleware,
        authentication(exclude=NO_SESSION),
        RequestMetrics(skipped=[health.METRICS_PATH, "/static/"], exclude_opt_key=LIVE_STREAM),
        *(limit.middleware for limit in rate_limit_configs(settings)),
        csrf_middleware(settings, csrf_bound_to_session),  # innermost, where Litestar would place its own
    ]


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    services = services or build_services(settings or Settings())
    settings = services.settings
    app = Litestar(
        route_handlers=[*ROUTES, ipn_receiver(services.ipn_intake), embed_router(settings), partner_api_router()],
        dependencies=services.dependencies(),
        plugins=[HTMXPlugin(), services.channels],
        template_config=TemplateConfig(instance=services.template_engine),
        middleware=middleware(settings),
        stores=services.stores,
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(hsts=settings.is_production), i18n.remember_chosen_locale],
        before_request=remember_language,
        # The API schema describes our internals; development only.
        openapi_config=None if settings.is_production else OpenAPIConfig(title="Cash-out dashboard", version="1"),
        lifespan=[services.running],
        state=State({"settings": settings, "db_sessionmaker": services.db.sessionmaker}),
        # Logging is the process's business (`python -m webapp serve` sets it up); we log errors ourselves.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )
    exempt_other_routes(app, settings)
    redact_queries_on(paths_marked(app, SECRET_QUERY))
    # Live streams are sent outside the middleware stack once their headers are out (streaming.py).
    handler = outside_the_stack(app.asgi_handler)
    app.asgi_handler = with_request_id(handler, trust_header=settings.trust_request_id_header)
    return app


def paths_marked(app: Litestar, key: str) -> list[str]:
    """The paths (`/embed/{slug}/start`) of the HTTP routes with a handler marked `opt={key: True}`."""
    return [
        route.path_format
        for route in app.routes
        if isinstance(route, HTTPRoute) and any(handler.opt.get(key) for handler in route.route_handlers)
    ]


async def settle_startup_heap() -> None:
    """Read what every language needs, then put what the process built so far out of the garbage collector's sight.

    It lives as long as the process, yet every full collection walked all of it with the event loop stopped: ~100 ms
    here, the p99 of IPN acknowledgements under load. Frozen, a full collection takes ~6 ms (docs/PERFORMANCE.md).
    """
    i18n.load_languages()
    gc.collect()
    gc.freeze()


def create_served_app(settings: Settings | None = None) -> Litestar:
    """The app of one server process (`python -m webapp serve`, each of its workers).

    A worker is a process of its own: it sets up its logging like the parent (JSON lines naming the worker as
    their `instance`), and its live gauges leave the shared sum when it stops.
    """
    settings = settings or Settings()
    level = logging.getLevelNamesMapping()[settings.log_level]
    configure_logging(json=settings.logs_as_json, level=level, access=settings.log_access)
    app = create_app(settings)
    app.on_startup.append(settle_startup_heap)
    app.on_shutdown.append(worker_stopped)
    return app
