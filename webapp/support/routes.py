"""The support console: search, an order's whole story (live), actions, masked data with audited reveals, exports."""

from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Stream, Template
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.activity.routes import activity_charts_of
from webapp.alixpay.client import AlixPayClient
from webapp.auth.guards import SignedInRequest, requires_admin, requires_support, session_of, still_signed_in
from webapp.config import AppSettings, Settings
from webapp.csvfile import csv_download
from webapp.db import DbSession, Sessionmaker
from webapp.embed.models import Partner
from webapp.i18n import KEEPS_QUERY, LANGUAGE_NAMES, N_, known_or_default, request_locale, translate
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import VERDICT_LABELS
from webapp.logs import SECRET_QUERY
from webapp.metrics import LIVE_DRAWINGS
from webapp.orders.figures import order_figures
from webapp.orders.live import LIVE_STREAM, LiveOrders, change_stream
from webapp.orders.models import Order
from webapp.orders.status_card import StatusCard
from webapp.orders.statuses import OrderStatus, status_info
from webapp.orders.transitions import StatusChanges
from webapp.support.masking import mask_body
from webapp.support.notes import notes_on
from webapp.support.pages import (
    PERSONAL_FIELDS,
    console_page,
    found,
    personal_data,
    reason_of,
    refusal,
)
from webapp.support.phrases import REVEALED, explainer
from webapp.support.queue import PROBLEM_KINDS, WHO, open_problems
from webapp.support.search import KIND_LABELS, Console, SearchQuery, count, interpret, search
from webapp.support.service import (
    Resend,
    audit_csv_lines,
    check_status_now,
    csv_lines,
    failure_reason,
    order_by_external_id,
    reverify_receipt,
    send_email_again,
)
from webapp.support.timeline import EMAIL_STATES, SOURCE_NAMES, copy_summary, timeline


def status_card(order: Order) -> dict[str, Any]:
    """The order's status as support reads it: the status, why it failed in both words, and its money."""
    info = status_info(order.status)
    locale = known_or_default(order.locale)
    return {
        "status": info,
        "figures": order_figures(order),
        "customer_words": translate(locale, info.explanation),
        "customer_locale": locale,
        "customer_language": LANGUAGE_NAMES.get(locale, locale),
        "provider_reason": failure_reason(order),
    }


async def timeline_context(
    session: AsyncSession, order: Order, *, locale: str, revealed: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The order's live part (status card and timeline) with what the page around it needs."""
    items = await timeline(session, order)
    shown = personal_data(order, revealed=revealed)
    everything_shown = revealed == PERSONAL_FIELDS.keys()
    return {
        **status_card(order),
        "order": order,
        "partner": await session.get(Partner, order.partner_id) if order.partner_id is not None else None,
        "items": items,
        "shown": shown,
        "revealed": revealed,
        "personal_fields": PERSONAL_FIELDS,
        "bodies": {
            item.receipt.id: mask_body(
                item.receipt.body.decode("utf-8", "replace"), None if everything_shown else order
            )
            for item in items
            if item.receipt is not None
        },
        "summary": copy_summary(order, items, email=shown["email"], account=shown["account"]),
        "summary_language": LANGUAGE_NAMES.get(order.locale, order.locale),
        "source_names": SOURCE_NAMES,
        "verdict_labels": VERDICT_LABELS,
        "email_states": EMAIL_STATES,
        "action_labels": audit.ACTION_LABELS,
        "explain": explainer(locale),
    }


async def order_context(
    session: AsyncSession, order: Order, request: SignedInRequest, *, revealed: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The whole order page: its live part, and the internal notes."""
    live = await timeline_context(session, order, locale=request_locale(request), revealed=revealed)
    return {**live, "notes": await notes_on(session, order_id=order.id)}


class SupportController(Controller):
    path = "/support"
    guards = [requires_support]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="support.search", opt={SECRET_QUERY: True, KEEPS_QUERY: True})
    async def search_page(
        self, request: HTMXRequest, db_session: DbSession, settings: AppSettings, who: FromQuery[str] = "all"
    ) -> Template:
        """The search page, with the queue while nothing is searched; an htmx request gets the results alone."""
        query = SearchQuery.from_params(request.query_params.multi_items())
        console = Console.of(settings)
        page = None if query.is_empty else await search(db_session, query, console=console)
        who = who if who in WHO else "all"
        show_queue = query.is_empty and not request.htmx
        context = {
            "query": query,
            "page": page,
            "searched_as": [KIND_LABELS[kind] for kind in interpret(query.text).kinds] if query.text else [],
            "statuses": list(OrderStatus),
            "masked": {order.id: personal_data(order) for order in page.orders} if page else {},
            "problems": await open_problems(
                db_session, stuck_after=console.stuck_after, who=who, agent=request.user.email
            )
            if show_queue
            else None,
            "who": who,
            "problem_kinds": PROBLEM_KINDS,
            "charts": await activity_charts_of(db_session, settings) if show_queue else None,
        }
        template = "support/_results.html" if request.htmx else "support/search.html"
        return console_page(template, settings, context)

    @get("/export.csv", name="support.export", opt={SECRET_QUERY: True})
    async def export_masked(
        self, request: SignedInRequest, db_sessionmaker: Sessionmaker, db_session: DbSession, settings: AppSettings
    ) -> Stream:
        query = SearchQuery.from_params(request.query_params.multi_items())
        return await self._export(request, db_sessionmaker, db_session, settings, query, "")

    @post("/export.csv", name="support.export_revealed", status_code=200)
    async def export_revealed(
        self, request: SignedInRequest, db_sessionmaker: Sessionmaker, db_session: DbSession, settings: AppSettings
    ) -> Response[Any]:
        form = await request.form()
        reason = reason_of(form)
        if not reason:
            return refusal(request, N_("Give a reason to export personal data unmasked."))
        query = SearchQuery.from_params(form.multi_items())
        return await self._export(request, db_sessionmaker, db_session, settings, query, reason)

    async def _export(
        self,
        request: SignedInRequest,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        db_session: AsyncSession,
        settings: Settings,
        query: SearchQuery,
        reason: str,
    ) -> Stream:
        """Streamed CSV; the row count goes ahead in a header so the page can show progress."""
        console = Console.of(settings)
        total = await count(db_session, query, console=console)
        action = "reveal_export" if reason else "export"
        await audit.append(
            db_sessionmaker,
            actor=request.user.email,
            action=action,
            reason=reason,
            detail=f"{total} orders; search {urlencode(query.params(after=''))}",
        )
        lines = csv_lines(db_sessionmaker, query, console=console, revealed=bool(reason))
        return csv_download(lines, "cashout-orders.csv", **{"x-total-rows": str(total)})

    @get("/orders/{order_id:str}", name="support.order")
    async def order_page(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        settings: AppSettings,
        order_id: FromPath[str],
        back: FromQuery[str] = "",
    ) -> Template:
        """The order's whole story; `back` is the search it was found by (its query string), for "Back to search"."""
        order = await found(db_session, order_id)
        search = SearchQuery.from_params(parse_qsl(back[:2000])).params()  # only what a search can hold
        context = {**await order_context(db_session, order, request), "back": search}
        return console_page("support/order.html", settings, context)

    @post("/orders/{order_id:str}/reveal", name="support.reveal", status_code=200)
    async def reveal(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        settings: AppSettings,
        order_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Template:
        """One personal field in clear for this one view, with the reason written to the audit log first."""
        order = await found(db_session, order_id)
        reason, field = reason_of(data), data.get("field", "")
        if not reason or field not in PERSONAL_FIELDS:
            context = {**await order_context(db_session, order, request), "reason_missing": True}
            return console_page("support/order.html", settings, context, status_code=422)
        await audit.append(
            db_sessionmaker,
            actor=request.user.email,
            action="reveal",
            order_id=order.id,
            reason=reason,
            detail=REVEALED(field=PERSONAL_FIELDS[field]),
        )
        context = await order_context(db_session, order, request, revealed=frozenset({field}))
        return console_page("support/order.html", settings, context, headers={"cache-control": "no-store"})

    @get("/orders/{order_id:str}/timeline", name="support.timeline")
    async def timeline_fragment(
        self, request: SignedInRequest, db_session: DbSession, settings: AppSettings, order_id: FromPath[str]
    ) -> Template:
        order = await found(db_session, order_id)
        context = await timeline_context(db_session, order, locale=request_locale(request))
        return console_page("support/_live.html", settings, context)

    @get("/orders/{order_id:str}/events", name="support.events", opt={LIVE_STREAM: True})
    async def events(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        settings: AppSettings,
        live_orders: NamedDependency[LiveOrders],
        templates: NamedDependency[Environment],
        order_id: FromPath[str],
    ) -> Stream:
        """The status card and the timeline after every change; support keeps watching a final order."""
        async with db_sessionmaker() as session:
            order = await found(session, order_id)
        template = templates.get_template("support/_live.html")
        timezone, locale = settings.console_timezone, request_locale(request)

        async def render(_card: StatusCard | None) -> tuple[str, bool]:
            LIVE_DRAWINGS.labels("database").inc()  # the timeline shows more than the status card
            async with db_sessionmaker() as session:
                context = await timeline_context(session, await found(session, order_id), locale=locale)
            return template.render(request=request, timezone=timezone, **context), False

        # The timeline's forms carry the viewer's CSRF token: streams share a drawing only within one browser.
        variant = (template.name, locale, ScopeState.from_scope(request.scope).csrf_token)
        return change_stream(
            live_orders,
            order.id or 0,
            render,
            event="timeline",
            variant=variant,
            alive=still_signed_in(request),
            session=session_of(request),
        )

    @post("/orders/{order_id:str}/check", name="support.check", status_code=303)
    async def check(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        changes: NamedDependency[StatusChanges],
        alixpay: NamedDependency[AlixPayClient],
        order_id: FromPath[str],
    ) -> Redirect:
        order = await found(db_session, order_id)
        await check_status_now(
            order, agent=request.user, db_sessionmaker=db_sessionmaker, changes=changes, alixpay=alixpay
        )
        return Redirect(request.app.route_reverse("support.order", order_id=order_id), status_code=303)

    @post("/receipts/{receipt_id:int}/reverify", name="support.reverify", status_code=200)
    async def reverify(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        alixpay: NamedDependency[AlixPayClient],
        receipt_id: FromPath[int],
    ) -> Template:
        receipt = await db_session.get(IpnReceipt, receipt_id)
        if receipt is None:
            raise NotFoundException()
        order = await order_by_external_id(db_session, receipt.external_order_id or "")
        result = await reverify_receipt(
            receipt, order, agent=request.user, alixpay=alixpay, db_sessionmaker=db_sessionmaker
        )
        return Template("support/_reverify.html", context={"receipt": receipt, "result": result})

    @post("/emails/{email_id:int}/resend", name="support.resend_email", status_code=303)
    async def resend_email(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        email_id: FromPath[int],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        """The email goes out again, once; then back where the agent was (the order or the customer's page)."""
        sent = await send_email_again(email_id, agent=request.user, db_sessionmaker=db_sessionmaker)
        if sent is None:
            raise NotFoundException()
        order, outcome = sent
        if outcome is Resend.TOO_SOON:
            return refusal(
                request, N_("This email was sent again a few minutes ago. Wait before sending it again."), 429
            )
        target = request.app.route_reverse("support.order", order_id=order.external_order_id)
        if data.get("from") == "customer":
            target = request.app.route_reverse("support.customer", user_id=order.user_id)
        return Redirect(target, status_code=303)

    @get("/audit", name="support.audit", guards=[requires_admin])
    async def audit_page(self, db_session: DbSession, settings: AppSettings) -> Template:
        check = await audit.verify_chain(db_session)
        entries = (
            await db_session.exec(select(audit.AuditEntry).order_by(col(audit.AuditEntry.id).desc()).limit(200))
        ).all()
        order_ids = {entry.order_id for entry in entries if entry.order_id is not None}
        orders = (await db_session.exec(select(Order).where(col(Order.id).in_(order_ids)))).all() if order_ids else []
        context = {
            "check": check,
            "entries": entries,
            "action_labels": audit.ACTION_LABELS,
            "orders": {order.id: order for order in orders},
        }
        return console_page("support/audit.html", settings, context)

    @get("/audit.csv", name="support.audit_export", guards=[requires_admin])
    async def audit_export(self, db_sessionmaker: Sessionmaker) -> Stream:
        return csv_download(audit_csv_lines(db_sessionmaker), "audit-log.csv")
