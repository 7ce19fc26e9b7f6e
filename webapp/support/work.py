"""Working cases: the queue's actions, internal notes, the customer's page, the customer's own view of an order."""

from typing import Any

from jinja2 import Environment
from litestar import Controller, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.auth.guards import SignedInRequest, requires_support
from webapp.auth.models import User
from webapp.config import AppSettings
from webapp.db import DbReader, DbSession, Sessionmaker
from webapp.i18n import LANGUAGE_NAMES, N_, known_or_default
from webapp.orders.routes import status_context
from webapp.orders.storage import order_history
from webapp.sessions import DatabaseStore, announce_sessions_ended
from webapp.support.customers import ORDERS_SHOWN, customer_record
from webapp.support.masking import mask_email
from webapp.support.notes import MAX_NOTE_CHARS, add_note, notes_on
from webapp.support.pages import back_within_support, console_page, found, reason_of, refusal
from webapp.support.queue import assign, find_problem, resolve
from webapp.support.search import Console
from webapp.support.timeline import EMAIL_STATES


class WorkController(Controller):
    path = "/support"
    guards = [requires_support]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @post("/cases/{kind:str}/{ref:int}", name="support.case", status_code=303)
    async def act_on_case(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        settings: AppSettings,
        kind: FromPath[str],
        ref: FromPath[int],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        """`action` take | release | resolve (with a `note`); every one audited. Then back where the agent was."""
        problem = await find_problem(db_session, kind, ref, stuck_after=Console.of(settings).stuck_after)
        if problem is None:
            raise NotFoundException()
        agent, action = request.user.email, data.get("action", "")
        if action == "resolve":
            note = reason_of(data, "note")
            if not note:
                return refusal(request, N_("Write a note to resolve this problem."))
            await resolve(db_sessionmaker, problem, agent=agent, note=note)
        elif action in ("take", "release"):
            await assign(db_sessionmaker, problem, agent=agent, to=agent if action == "take" else None)
        else:
            return refusal(request, N_("Unknown action."), 400)
        fallback = request.app.route_reverse("support.search")
        return Redirect(back_within_support(data.get("next", ""), fallback), status_code=303)

    @post("/orders/{order_id:str}/notes", name="support.order_note", status_code=303)
    async def note_on_order(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        order_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        order = await found(db_session, order_id)
        target = request.app.route_reverse("support.order", order_id=order_id)
        return await noted(request, db_sessionmaker, data, target, order_id=order.id)

    @post("/customers/{user_id:int}/notes", name="support.customer_note", status_code=303)
    async def note_on_customer(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        user_id: FromPath[int],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        if await db_session.get(User, user_id) is None:
            raise NotFoundException()
        target = request.app.route_reverse("support.customer", user_id=user_id)
        return await noted(request, db_sessionmaker, data, target, user_id=user_id)

    @post("/customers/{user_id:int}/sign-out", name="support.customer_sign_out", status_code=303)
    async def sign_customer_out(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        channels: NamedDependency[ChannelsPlugin],
        user_id: FromPath[int],
    ) -> Redirect:
        """End every session of this person (a stolen device, a shared computer): their open pages stop at once."""
        if await db_session.get(User, user_id) is None:
            raise NotFoundException()
        ended = await sessions_store(request).delete_owned_by(user_id)
        announce_sessions_ended(channels, ended)
        await audit.append(db_sessionmaker, actor=request.user.email, action="signed_out", detail=f"user {user_id}")
        target = request.app.route_reverse("support.customer", user_id=user_id)
        return Redirect(f"{target}?signed_out={len(ended)}#account-heading", status_code=303)

    @get("/customers/{user_id:int}", name="support.customer")
    async def customer_page(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        settings: AppSettings,
        user_id: FromPath[int],
        signed_out: FromQuery[int | None] = None,
    ) -> Template:
        """One customer: every order (and partner), every email, their settings and the notes on them."""
        record = await customer_record(db_session, user_id)
        if record is None:
            raise NotFoundException()
        context = {
            "sessions": await sessions_store(request).count_owned_by(user_id),
            "signed_out": signed_out,
            "record": record,
            "customer": record.customer,
            "email": mask_email(record.customer.email),
            "email_states": EMAIL_STATES,
            "notes": await notes_on(db_session, user_id=user_id),
            "limit": ORDERS_SHOWN,
        }
        return console_page("support/customer.html", settings, context)

    @get("/orders/{order_id:str}/as-customer", name="support.as_customer")
    async def as_customer(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_reader: DbReader,
        settings: AppSettings,
        templates: NamedDependency[Environment],
        order_id: FromPath[str],
    ) -> Template:
        """The customer's own order page, drawn from the same templates in their language, read-only."""
        order = await found(db_session, order_id)
        view = await customer_view(db_reader, templates, request, order.external_order_id, order.user_id, order.locale)
        locale = known_or_default(order.locale)
        context = {"order": order, "view": view, "view_locale": locale, "view_language": LANGUAGE_NAMES[locale]}
        return console_page("support/as_customer.html", settings, context)


def sessions_store(request: SignedInRequest) -> DatabaseStore:
    return request.app.stores.get("sessions")  # type: ignore[return-value]


async def noted(
    request: SignedInRequest,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    data: dict[str, str],
    target: str,
    **about: int | None,
) -> Response[Any]:
    """Keep the posted note on what `about` names (`order_id` or `user_id`), then back to its notes."""
    body = reason_of(data, "note", MAX_NOTE_CHARS)
    if not body:
        return refusal(request, N_("Write the note first."))
    await add_note(db_sessionmaker, agent=request.user.email, body=body, **about)
    return Redirect(f"{target}#notes-heading", status_code=303)


async def customer_view(
    reader: AsyncEngine, templates: Environment, request: SignedInRequest, order_id: str, user_id: int, locale: str
) -> Markup:
    history = await order_history(reader, order_id, user_id=user_id)
    if history is None:
        raise NotFoundException()
    template = templates.get_template("support/_customer_view.html")
    drawn = template.render(request=request, locale=known_or_default(locale), live=True, **status_context(history))
    return Markup(drawn)  # noqa: S704 (drawn by the autoescaping environment)
