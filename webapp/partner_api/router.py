"""The partner API's router: every route of `/api/partner/v1/`, its key check, its problem documents, no CSRF.

(The API carries no cookie: an API key in a header is not sent by a browser on its own, so there is nothing for
a cross-site request to ride on.)
"""

from litestar import Router
from litestar.di import Provide

from webapp.partner_api.problems import API_PREFIX, EXCEPTION_HANDLERS
from webapp.partner_api.routes import api_partner, get_order, list_events, list_orders, resend_event
from webapp.partner_api.sessions import create_session

ROUTES = [get_order, list_orders, list_events, resend_event, create_session]
ROUTE_NAMES = frozenset(handler.name for handler in ROUTES if handler.name)


def partner_api_router() -> Router:
    return Router(
        path=API_PREFIX,
        route_handlers=ROUTES,
        dependencies={"partner": Provide(api_partner)},
        exception_handlers=EXCEPTION_HANDLERS,
        opt={"exclude_from_csrf": True},
        tags=["partner API v1"],
    )
