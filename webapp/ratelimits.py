"""Rate limits on the doors worth hammering: sign-in, orders, support search, launches, IPNs, the partner API.

Litestar's rate-limit middleware, one per limit, with its counters in our database store so every instance
counts together. Each limit applies to named routes only and counts per source address (per signed-in person
for orders and search, per API key for the partner API). Alix Pay's own addresses (`IPN_ALLOWED_SOURCES`) are
never limited; everyone else gets a generous per-address allowance on the IPN URL, enough for Alix Pay's
retries. A refusal is a 429 with `Retry-After` and a localised page (a problem document on the partner API).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from litestar import Litestar, Request
from litestar.handlers import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.routes import HTTPRoute

from webapp.auth.guards import person_of
from webapp.config import Settings
from webapp.partner_api.keys import key_prefix
from webapp.partner_api.router import ROUTE_NAMES as PARTNER_API_ROUTES

RATE_LIMIT_STORE = "rate_limits"


@dataclass(frozen=True)
class Limit:
    name: str
    routes: frozenset[str]
    per_minute: int
    per_person: bool = False
    """Count per signed-in person (by their user id) rather than per address."""
    per_key: bool = False
    """Count per partner API key (by its visible prefix) rather than per address."""


def limits(settings: Settings) -> list[Limit]:
    return [
        Limit("sign-in", frozenset({"auth.login", "embed.start"}), settings.rate_limit_sign_in),
        Limit("orders", frozenset({"orders.review", "orders.create"}), settings.rate_limit_orders, per_person=True),
        Limit("search", frozenset({"support.search", "support.export"}), settings.rate_limit_search, per_person=True),
        Limit("ipn", frozenset({"ipn.alixpay"}), settings.rate_limit_ipn),
        Limit("partner-api", PARTNER_API_ROUTES, settings.rate_limit_partner_api, per_key=True),
    ]


def exempt_key(limit: Limit) -> str:
    """The route option with which a route outside `limit` has its middleware step aside at once."""
    return f"rate_limit_{limit.name}_exempt"


def exempt_other_routes(app: Litestar, settings: Settings) -> None:
    """Mark each route outside each limit, so that limit's middleware steps aside without building a request.

    Without the mark, each of the middlewares builds a `Request` and asks its `check` on every request (a fifth of
    an IPN's CPU, docs/PERFORMANCE.md). The mark is only a shortcut: `check` still decides by route name.
    """
    handlers: list[BaseRouteHandler] = []
    for route in app.routes:
        handlers += route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]  # type: ignore[attr-defined]
    for limit in limits(settings):
        for handler in handlers:
            handler.opt[exempt_key(limit)] = handler.name not in limit.routes


def _applies(limit: Limit, allowed_sources: frozenset[str]) -> Callable[[Request], Awaitable[bool]]:
    async def check(request: Request) -> bool:  # async: Litestar runs a plain function in a thread, every request
        if request.scope["route_handler"].name not in limit.routes:
            return False
        return not (limit.name == "ipn" and get_remote_address(request) in allowed_sources)

    return check


def _identifier(limit: Limit) -> Callable[[Request], str]:
    def identify(request: Request) -> str:
        user = person_of(request) if limit.per_person else None
        key = key_prefix(request.headers.get("authorization", "")) if limit.per_key else None
        if user is not None:
            who = f"user:{user.id}"
        elif key is not None:
            who = f"key:{key}"
        else:
            who = f"address:{get_remote_address(request)}"
        return f"rl:{limit.name}:{who}"

    return identify


def rate_limit_configs(settings: Settings) -> list[RateLimitConfig]:
    allowed = frozenset(settings.ipn_allowed_sources)
    return [
        RateLimitConfig(
            rate_limit=("minute", limit.per_minute),
            store=RATE_LIMIT_STORE,
            check_throttle_handler=_applies(limit, allowed),
            identifier_for_request=_identifier(limit),
            exclude_opt_key=exempt_key(limit),
        )
        for limit in limits(settings)
    ]
