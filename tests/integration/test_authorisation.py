"""Who may use which route: every route, fragment and stream for every kind of visitor, from one table.

`MATRIX` names a policy for each route the app serves; `test_every_route_has_a_policy` fails when a route is
added (or removed) without updating it, so no new page is ever reachable by accident.
"""

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from joserfc.jwk import OctKey
from litestar import Litestar
from sqlmodel import select

from tests.builders import PARTNER_SECRETS, make_order
from tests.conftest import create_schema
from tests.embed_tokens import HS_SECRET, mint
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, place_order, signed_in_client
from tests.processes import async_wait_for
from webapp.app import create_app
from webapp.auth.models import User
from webapp.config import Settings
from webapp.embed.models import WebhookEvent
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.ipn.routes import ANSWERED_METHODS
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order
from webapp.orders.recipients import SavedRecipient
from webapp.partner_api.keys import make_key

ROLES = ("anonymous", "user", "other_user", "support", "admin", "embedded")
RETURN_URL = "https://wallet.acme.example/back"
SIGN_INS = {
    "user": "user@example.com",
    "other_user": "someone.else@example.com",
    "support": "support@example.com",
    "admin": "admin@example.com",
}

# What each kind of visitor gets: ok (served, whatever the answer), login (sent to sign in), forbidden (403),
# hidden (404: another person's order is as good as unknown), refused (an embedded route without its session).
EVERYONE = dict.fromkeys(ROLES, "ok")
SIGNED_IN = {"anonymous": "login", "embedded": "login"} | dict.fromkeys(SIGN_INS, "ok")
OWNER = {"anonymous": "login", "user": "ok", "embedded": "login"} | dict.fromkeys(
    ("other_user", "support", "admin"), "hidden"
)
SUPPORT = {"anonymous": "login", "user": "forbidden", "other_user": "forbidden", "support": "ok", "admin": "ok"}
SUPPORT |= {"embedded": "login"}
ADMIN = SUPPORT | {"support": "forbidden"}
EMBEDDED = dict.fromkeys(ROLES, "refused") | {"embedded": "ok"}
API_KEY = dict.fromkeys(ROLES, "no_key")
"""The partner API: a session of any kind opens nothing there, only an API key does (401 without one)."""

MATRIX: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/system-status"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/static/{file_path:path}"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("GET", "/auth/callback"): EVERYONE,  # answers a bad or missing state with an error page, for anyone
    ("POST", "/logout"): EVERYONE,
    ("POST", "/ipn/alixpay"): EVERYONE,  # Alix Pay's: trusted by signature, never by session
    ("GET", "/metrics"): EVERYONE,  # open in development only; a bearer token (or off) in production
    ("GET", "/orders"): SIGNED_IN,
    ("POST", "/orders"): SIGNED_IN,
    ("GET", "/orders/new"): SIGNED_IN,
    ("GET", "/orders/history.csv"): SIGNED_IN,
    ("GET", "/orders/banks"): SIGNED_IN,
    ("POST", "/orders/validate"): SIGNED_IN,
    ("POST", "/orders/review"): SIGNED_IN,
    ("GET", "/orders/review"): SIGNED_IN,
    ("GET", "/account/notifications"): SIGNED_IN,
    ("GET", "/account/recipients"): SIGNED_IN,
    ("POST", "/account/recipients/{recipient_id:int}/label"): OWNER,
    ("POST", "/account/recipients/{recipient_id:int}/delete"): OWNER,
    ("POST", "/account/notifications"): SIGNED_IN,
    ("GET", "/orders/{order_id:str}"): OWNER,
    ("GET", "/orders/{order_id:str}/status"): OWNER,
    ("GET", "/orders/{order_id:str}/events"): OWNER,
    ("GET", "/orders/{order_id:str}/printable"): OWNER,
    ("GET", "/support"): SUPPORT,
    ("GET", "/support/export.csv"): SUPPORT,
    ("POST", "/support/export.csv"): SUPPORT,
    ("GET", "/support/orders/{order_id:str}"): SUPPORT,
    ("GET", "/support/orders/{order_id:str}/timeline"): SUPPORT,
    ("GET", "/support/orders/{order_id:str}/events"): SUPPORT,
    ("POST", "/support/orders/{order_id:str}/reveal"): SUPPORT,
    ("POST", "/support/orders/{order_id:str}/check"): SUPPORT,
    ("POST", "/support/receipts/{receipt_id:int}/reverify"): SUPPORT,
    ("POST", "/support/emails/{email_id:int}/resend"): SUPPORT,
    ("POST", "/support/cases/{kind:str}/{ref:int}"): SUPPORT,
    ("POST", "/support/orders/{order_id:str}/notes"): SUPPORT,
    ("GET", "/support/orders/{order_id:str}/as-customer"): SUPPORT,
    ("GET", "/support/customers/{user_id:int}"): SUPPORT,
    ("POST", "/support/customers/{user_id:int}/notes"): SUPPORT,
    ("POST", "/support/customers/{user_id:int}/sign-out"): SUPPORT,
    ("GET", "/support/audit"): ADMIN,
    ("GET", "/support/audit.csv"): ADMIN,
    ("GET", "/operations"): ADMIN,
    ("GET", "/operations/overview"): ADMIN,
    ("GET", "/activity"): SUPPORT,
    ("GET", "/admin/partners"): ADMIN,
    ("POST", "/admin/partners"): ADMIN,
    ("GET", "/admin/partners/new"): ADMIN,
    ("GET", "/admin/partners/{slug:str}"): ADMIN,
    ("GET", "/admin/partners/{slug:str}/edit"): ADMIN,
    ("POST", "/admin/partners/{slug:str}/rotate/{kind:str}"): ADMIN,
    ("POST", "/admin/partners/{slug:str}/enabled"): ADMIN,
    ("POST", "/admin/partners/{slug:str}/events/{event_id:str}/resend"): ADMIN,
    ("GET", "/admin/partners/{slug:str}/api-keys"): ADMIN,
    ("POST", "/admin/partners/{slug:str}/api-keys"): ADMIN,
    ("POST", "/admin/partners/{slug:str}/api-keys/{prefix:str}/revoke"): ADMIN,
    ("GET", "/api/partner/v1/orders"): API_KEY,
    ("GET", "/api/partner/v1/orders/{order_id:str}"): API_KEY,
    ("GET", "/api/partner/v1/events"): API_KEY,
    ("POST", "/api/partner/v1/events/{event_id:str}/resend"): API_KEY,
    ("POST", "/api/partner/v1/sessions"): API_KEY,
    ("GET", "/api/partner/v1/openapi.json"): EVERYONE,  # describes the API, says nothing of anyone's orders
    ("GET", "/api/partner/v1/docs"): EVERYONE,
    ("GET", "/embed/{partner:str}/start"): EVERYONE,  # trusted by the partner's launch token, checked there
    ("GET", "/embed/{partner:str}/orders"): EMBEDDED,
    ("POST", "/embed/{partner:str}/orders"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/new"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/history.csv"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/banks"): EMBEDDED,
    ("POST", "/embed/{partner:str}/orders/validate"): EMBEDDED,
    ("POST", "/embed/{partner:str}/orders/review"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/review"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/{order_id:str}"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/{order_id:str}/status"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/{order_id:str}/events"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/{order_id:str}/printable"): EMBEDDED,
    ("GET", "/embed/{partner:str}/orders/{order_id:str}/return"): EMBEDDED,
}
# Litestar's API schema pages: development only (`openapi_config=None` in production, test_app.py checks).
SCHEMA_PREFIX = "/schema"


def served_routes(app: Litestar) -> set[tuple[str, str]]:
    """Every method and path the app answers: an ASGI route names its methods in its options."""
    return {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [getattr(route, "route_handler", None)])
        for method in getattr(handler, "http_methods", None) or handler.opt.get(ANSWERED_METHODS, ())
        if method not in ("OPTIONS", "HEAD") and not route.path.startswith(SCHEMA_PREFIX)
    }


async def test_every_route_has_a_policy(settings: Settings) -> None:
    await create_schema(settings.database.url)
    served = served_routes(create_app(settings))
    assert served - MATRIX.keys() == set(), "a route without an authorisation policy: add it to MATRIX"
    assert MATRIX.keys() - served == set(), "MATRIX names a route the app no longer serves"


@dataclass
class World:
    """One order of `user@example.com` (with an IPN receipt), and one placed in partner `acme`'s embedded flow."""

    order: str
    receipt: int
    embedded_order: str
    event: str
    email: int
    webhook: int
    """The partner's webhook event, given up: a problem in support's queue."""
    customer: int
    recipient: int
    """A recipient `user@example.com` saved."""
    api_key: str
    """The prefix of partner `acme`'s API key."""


async def embedded_client(app: LiveApp) -> tuple[httpx.AsyncClient, str]:
    """A visitor the partner sent with a launch token; returns the client and its page's CSRF token."""
    client = app.client()
    launch = mint(OctKey.import_key(HS_SECRET), aud=app.url, jti=str(uuid.uuid4()), return_url=RETURN_URL)
    started = await client.get("/embed/acme/start", params={"token": launch})
    assert started.status_code == 303, started.text
    # The cookie is `Secure` (SameSite=None needs it); browsers send it to http://127.0.0.1, httpx does not.
    client.cookies.set("embed_session", started.cookies["embed_session"])
    form = await client.get("/embed/acme/orders/new")
    return client, re.search(r'"x-csrftoken": "([^"]+)"', form.text).group(1)


async def build_world(app: LiveApp, db: Db) -> World:
    async with db.sessionmaker() as session, session.begin():
        spec = PartnerSpec(
            slug="acme",
            name="Acme Wallet",
            origins=["https://wallet.acme.example"],
            token_alg="HS256",
            token_key=HS_SECRET,
            return_urls=[RETURN_URL],
        )
        partner = await save_partner(session, spec, PARTNER_SECRETS)
        api_key = (await make_key(session, partner, "matrix")).key.prefix
    order = await place_order(await signed_in_client(app))
    receipts = await async_wait_for(lambda: db.receipts(order), what="an IPN for the order")
    await embedded_client(app)  # makes the partner's user
    async with db.sessionmaker() as session, session.begin():
        wallet_user = (await session.exec(select(User).where(User.issuer == "partner:acme"))).one()
        embedded = make_order(user_id=wallet_user.id, email=wallet_user.email, partner_id=partner.id)
        session.add(embedded)
        await session.flush()
        event = WebhookEvent(event_id="evt_matrix", partner_id=partner.id or 0, order_id=embedded.id or 0, type="x")
        session.add(event)
        event.payload, event.state = "{}", "gave_up"
        placed = (await session.exec(select(Order).where(Order.external_order_id == order))).one()
        email = (await session.exec(select(EmailMessage).where(EmailMessage.order_id == placed.id))).first()
        saved = SavedRecipient(
            user_id=placed.user_id, bank_bin="970407", bank_name="Techcombank", account_number="1", recipient_name="A"
        )
        session.add(saved)
        await session.flush()
    return World(
        order,
        receipts[0].id or 0,
        embedded.external_order_id,
        "evt_matrix",
        email.id or 0,
        event.id or 0,
        placed.user_id,
        saved.id or 0,
        api_key,
    )


ENDS_SESSIONS = [("POST", "/admin/partners/{slug:str}/enabled"), ("POST", "/logout")]
"""Tried last: switching the partner off and signing out end what every other row needs."""


def rows_in_order() -> list[tuple[tuple[str, str], dict[str, str]]]:
    return sorted(MATRIX.items(), key=lambda row: ENDS_SESSIONS.index(row[0]) + 1 if row[0] in ENDS_SESSIONS else 0)


def classify(path: str, answer: httpx.Response) -> str:
    status = answer.status_code
    location = answer.headers.get("location") or answer.headers.get("hx-redirect") or ""
    if status in (302, 303, 401) and location.startswith("/login"):
        return "login"
    if path.startswith("/embed/") and status == 401:
        return "refused"
    if path.startswith("/api/partner/") and status == 401:
        return "no_key"
    return {403: "forbidden", 404: "hidden"}.get(status, "error" if status >= 500 else "ok")


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_fragment_and_stream_answers_each_visitor_as_its_policy_says(
    live_app: LiveApp, db: Db, role: str
) -> None:
    world = await build_world(live_app, db)
    embed_token = ""
    if role == "embedded":
        client, embed_token = await embedded_client(live_app)
    else:
        client = await signed_in_client(live_app, SIGN_INS[role]) if role in SIGN_INS else live_app.client()
    await client.get("/")  # a CSRF cookie, so a refusal below is the guard's, not the CSRF check's
    tokens = {"/embed/": embed_token, "/": client.cookies.get("csrftoken", "")}
    params = {
        "file_path": "css/app.css",
        "receipt_id": str(world.receipt),
        "slug": "acme",
        "partner": "acme",
        "event_id": world.event,
        "email_id": str(world.email),
        "kind": "webhook",
        "ref": str(world.webhook),
        "user_id": str(world.customer),
        "recipient_id": str(world.recipient),
        "prefix": world.api_key,
    }
    wrong = []
    for (method, template), policy in rows_in_order():
        order = world.embedded_order if template.startswith("/embed/") else world.order
        path = re.sub(r"\{(\w+):\w+\}", lambda m: params.get(m.group(1), order), template)  # noqa: B023
        headers = {"x-csrftoken": tokens["/embed/" if path.startswith("/embed/") else "/"]}
        data = {} if method == "POST" else None
        async with client.stream(method, path, data=data, headers=headers, follow_redirects=False) as answer:
            got = classify(path, answer)
        if got != policy[role]:
            wrong.append(f"{method} {path}: {got} (expected {policy[role]}, HTTP {answer.status_code})")
    assert wrong == [], "\n".join(wrong)
    if role == "embedded":  # another person's order, asked for inside the partner's flow, is as good as unknown
        assert (await client.get(f"/embed/acme/orders/{world.order}")).status_code == 404
