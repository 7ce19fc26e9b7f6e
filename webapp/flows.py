"""Which flow a request is in: our own pages, or one partner's hosted pages under `/embed/{partner}/`.

The order pages are registered twice, at `/orders/…` and at `/embed/{partner}/orders/…`, under the same route
names. A URL made for a request keeps it in its flow: the partner path parameter is passed on, and Litestar
picks the route that uses it.
"""

from typing import Any

from litestar.connection import ASGIConnection

EMBED_PREFIX = "/embed"
PARTNER_PARAM = "partner"


def flow_partner(connection: ASGIConnection) -> str | None:
    """The partner slug of an embedded request, None on our own pages (also before routing, e.g. for a 404)."""
    partner = connection.scope.get("path_params", {}).get(PARTNER_PARAM)
    return partner if isinstance(partner, str) else None


def flow_path(connection: ASGIConnection, name: str, **params: Any) -> str:
    """The path of route `name` in the request's flow."""
    partner = flow_partner(connection)
    if partner is not None:
        params.setdefault(PARTNER_PARAM, partner)
    return connection.app.route_reverse(name, **params)
