"""The support console: search, an order's whole story (live), actions, masked data with audited reveals, exports."""

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

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
from webapp.alixpay.client import AlixPayClient
from webapp.auth.guards import SignedInRequest, requires_admin, requires_support, session_of, still_signed_in
from webapp.config import AppSettings, Settings
from webapp.db import DbSession, Sessionmaker
from webapp.embed.models import Partner
from webapp.i18n import KEEPS_QUERY, LANGUAGE_NAMES, N_, request_locale, translate
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import VERDICT_LABELS
from webapp.logs import SECRET_QUERY, bind_order
from webapp.orders.live import LIVE_STREAM, LiveOrders, change_stream
from webapp.orders.models import Order
from webapp.orders.statuses import OrderStatus
from webapp.orders.transitions import StatusChanges
from webapp.support.masking import mask_account, mask_body, mask_email, mask_name
from webapp.support.search import KIND_LABELS, SearchQuery, count, interpret, search
from webapp.support.service import (
    audit_csv_lines,
    check_status_now,
    csv_lines,
    mark_reviewed,
    order_by_external_id,
    reverify_receipt,
    send_email_again,
)
from webapp.support.timeline import EMAIL_STATES, SOURCE_NAMES, copy_summary, receipts_needing_attention, timeline

MAX_REASON_CHARS = 500


def stuck_after(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.support_stuck_after_minutes)


def personal_data(order: Order, *, revealed: bool) -> dict[str, str]:
    """What the page shows of the customer: masked unless revealed (for that one view) with a reason."""
    if revealed:
        return {"email": order.user_email, "account": order.account_number, "name": order.recipient_name}
    return {
        "email": mask_email(order.user_email),
        "account": mask_account(order.account_number),
        "name": mask_name(order.recipient_name),
    }


async def found(session: AsyncSession, order_id: str) -> Order:
    order = await order_by_external_id(session, order_id)
    if order is None:
        raise NotFoundException()
    bind_order(order.external_order_id)
    return order


async def timeline_context(session: AsyncSession, order: Order, *, revealed: bool = False) -> dict[str, Any]:
    items = await timeline(session, order)
    shown = personal_data(order, revealed=revealed)
    return {
        "order": order,
        "partner": await session.get(Partner, order.partner_id) if order.partner_id is not None else None,
        "items": items,
        "shown": shown,
        "revealed": revealed,
        "bodies": {
            item.receipt.id: mask_body(item.receipt.body.decode("utf-8", "replace"), None if revealed else order)
            for item in items
            if item.receipt is not None
        },
        "summary": copy_summary(order, items, email=shown["email"], account=shown["account"]),
        "summary_language": LANGUAGE_NAMES.get(order.locale, order.locale),
        "source_names": SOURCE_NAMES,
        "verdict_labels": VERDICT_LABELS,
        "email_states": EMAIL_STATES,
        "action_labels": audit.ACTION_LABELS,
    }


def refusal(request: SignedInRequest, message: str) -> Response[str]:
    """A 422 in the agent's language, as plain text (the export's progress script shows it as it is)."""
    return Response(translate(request_locale(request), message), status_code=422, media_type="text/plain")


def reason_of(data: dict[str, str]) -> str:
    return " ".join(str(data.get("reason", "")).split())[:MAX_REASON_CHARS]


class SupportController(Controller):
    path = "/support"
    guards = [requires_support]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="support.search", opt={SECRET_QUERY: True, KEEPS_QUERY: True})
    async def search_page(self, request: HTMXRequest, db_session: DbSession, settings: AppSettings) -> Template:
        """The search page; an htmx request gets the results alone (the URL is pushed, so it can be shared)."""
        query = SearchQuery.from_params(dict(request.query_params))
        page = None if query.is_empty else await search(db_session, query, stuck_after=stuck_after(settings))
        context = {
            "query": query,
            "page": page,
            "searched_as": [KIND_LABELS[kind] for kind in interpret(query.text).kinds] if query.text else [],
            "statuses": list(OrderStatus),
            "masked": {order.id: personal_data(order, revealed=False) for order in page.orders} if page else {},
            "attention": [] if request.htmx else await receipts_needing_attention(db_session),
            "verdict_labels": VERDICT_LABELS,
            "email_states": EMAIL_STATES,
        }
        template = "support/_results.html" if request.htmx else "support/search.html"
        return Template(template, context=context)

    @get("/export.csv", name="support.export", opt={SECRET_QUERY: True})
    async def export_masked(
        self, request: SignedInRequest, db_sessionmaker: Sessionmaker, db_session: DbSession, settings: AppSettings
    ) -> Stream:
        return await self._export(request, db_sessionmaker, db_session, settings, dict(request.query_params), "")

    @post("/export.csv", name="support.export_revealed", status_code=200)
    async def export_revealed(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        db_session: DbSession,
        settings: AppSettings,
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        reason = reason_of(data)
        if not reason:
            return refusal(request, N_("Give a reason to export personal data unmasked."))
        return await self._export(request, db_sessionmaker, db_session, settings, data, reason)

    async def _export(
        self,
        request: SignedInRequest,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        db_session: AsyncSession,
        settings: Settings,
        params: dict[str, Any],
        reason: str,
    ) -> Stream:
        """Streamed CSV; the row count goes ahead in a header so the page can show progress."""
        query = SearchQuery.from_params(params)
        total = await count(db_session, query, stuck_after=stuck_after(settings))
        action = "reveal_export" if reason else "export"
        await audit.append(
            db_sessionmaker,
            actor=request.user.email,
            action=action,
            reason=reason,
            detail=f"{total} orders; search {query.params(after='')}",
        )
        lines = csv_lines(db_sessionmaker, query, stuck_after=stuck_after(settings), revealed=bool(reason))
        return Stream(
            lines,
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": 'attachment; filename="cashout-orders.csv"',
                "x-total-rows": str(total),
                "cache-control": "no-store",
            },
        )

    @get("/orders/{order_id:str}", name="support.order")
    async def order_page(self, db_session: DbSession, order_id: FromPath[str], back: FromQuery[str] = "") -> Template:
        """The order's whole story; `back` is the search it was found by (its query string), for "Back to search"."""
        order = await found(db_session, order_id)
        search = SearchQuery.from_params(dict(parse_qsl(back[:2000]))).params()  # only what a search can hold
        context = {**await timeline_context(db_session, order), "back": search}
        return Template("support/order.html", context=context)

    @post("/orders/{order_id:str}/reveal", name="support.reveal", status_code=200)
    async def reveal(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        db_sessionmaker: Sessionmaker,
        order_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Template:
        """Personal data in clear for this one view, with the reason written to the audit log first."""
        order = await found(db_session, order_id)
        reason = reason_of(data)
        if not reason:
            context = {**await timeline_context(db_session, order), "reason_missing": True}
            return Template("support/order.html", context=context, status_code=422)
        await audit.append(
            db_sessionmaker,
            actor=request.user.email,
            action="reveal",
            order_id=order.id,
            reason=reason,
            detail="account number, name and email shown",
        )
        context = await timeline_context(db_session, order, revealed=True)
        return Template("support/order.html", context=context, headers={"cache-control": "no-store"})

    @get("/orders/{order_id:str}/timeline", name="support.timeline")
    async def timeline_fragment(self, db_session: DbSession, order_id: FromPath[str]) -> Template:
        order = await found(db_session, order_id)
        return Template("support/_timeline.html", context=await timeline_context(db_session, order))

    @get("/orders/{order_id:str}/events", name="support.events", opt={LIVE_STREAM: True})
    async def events(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        live_orders: NamedDependency[LiveOrders],
        templates: NamedDependency[Environment],
        order_id: FromPath[str],
    ) -> Stream:
        """The timeline after every change of the order; support keeps watching a final order (actions go on)."""
        async with db_sessionmaker() as session:
            order = await found(session, order_id)
        template = templates.get_template("support/_timeline.html")

        async def render() -> tuple[str, bool]:
            async with db_sessionmaker() as session:
                context = await timeline_context(session, await found(session, order_id))
            return template.render(request=request, **context), False

        # The timeline's forms carry the viewer's CSRF token: streams share a drawing only within one browser.
        variant = (template.name, request_locale(request), ScopeState.from_scope(request.scope).csrf_token)
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

    @post("/receipts/{receipt_id:int}/review", name="support.review", status_code=303)
    async def review(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        receipt_id: FromPath[int],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        note = reason_of(data)
        if not note:
            return refusal(request, N_("Write a note to mark this receipt reviewed."))
        receipt = await mark_reviewed(receipt_id, note=note, agent=request.user, db_sessionmaker=db_sessionmaker)
        if receipt is None:
            raise NotFoundException()
        target = (
            request.app.route_reverse("support.order", order_id=receipt.external_order_id)
            if receipt.external_order_id
            else request.app.route_reverse("support.search")
        )
        return Redirect(target, status_code=303)

    @post("/emails/{email_id:int}/resend", name="support.resend_email", status_code=303)
    async def resend_email(
        self, request: SignedInRequest, db_sessionmaker: Sessionmaker, email_id: FromPath[int]
    ) -> Redirect:
        order = await send_email_again(email_id, agent=request.user, db_sessionmaker=db_sessionmaker)
        if order is None:
            raise NotFoundException()
        return Redirect(request.app.route_reverse("support.order", order_id=order.external_order_id), status_code=303)

    @get("/audit", name="support.audit", guards=[requires_admin])
    async def audit_page(self, db_session: DbSession) -> Template:
        check = await audit.verify_chain(db_session)
        entries = (
            await db_session.exec(select(audit.AuditEntry).order_by(col(audit.AuditEntry.id).desc()).limit(200))
        ).all()
        context = {"check": check, "entries": entries, "action_labels": audit.ACTION_LABELS}
        return Template("support/audit.html", context=context)

    @get("/audit.csv", name="support.audit_export", guards=[requires_admin])
    async def audit_export(self, db_sessionmaker: Sessionmaker) -> Stream:
        return Stream(
            audit_csv_lines(db_sessionmaker),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="audit-log.csv"', "cache-control": "no-store"},
        )
