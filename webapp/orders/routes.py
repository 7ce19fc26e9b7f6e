"""Cash-out pages: the form (with inline htmx validation), review, confirm, my orders, the live order page."""

from collections.abc import Iterable
from dataclasses import replace
from typing import Annotated, Any

from jinja2 import Environment
from litestar import Controller, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Stream, Template
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.auth.guards import SignedInRequest, requires_user, session_of, still_signed_in
from webapp.banks.directory import payable_banks
from webapp.banks.vietqr import qr_svg, transfer_payload
from webapp.config import AppSettings, Settings
from webapp.csvfile import csv_download
from webapp.db import DbReader, DbSession
from webapp.flows import flow_partner, flow_path
from webapp.i18n import KEEPS_QUERY, request_locale, translate
from webapp.logs import bind_order
from webapp.metrics import LIVE_DRAWINGS
from webapp.orders.figures import estimate, order_figures
from webapp.orders.forms import Cashout, CashoutInput, FieldError, mask_account, normalise_name, parse_amount
from webapp.orders.forms import validate as validate_form
from webapp.orders.listing import OUTCOMES, OwnOrdersQuery, history_csv, own_orders_page
from webapp.orders.live import LIVE_STREAM, LiveOrders, change_stream
from webapp.orders.models import Order
from webapp.orders.recipients import own_recipient, saved_recipients
from webapp.orders.service import create_cashout, order_for_user
from webapp.orders.status_card import StatusCard, card_context
from webapp.orders.statuses import OrderStatus
from webapp.orders.storage import OrderHistory, own_order_history, placed_from
from webapp.orders.transitions import StatusChanges
from webapp.sessions import from_session, to_session

REVIEW_KEY = "cashout_review"
NO_STORE = CacheControlHeader(no_store=True)
PREFILL_KEY = "cashout_prefill"
"""Values a new form starts with (an embedded session's launch token may name the amount)."""
FIELDS = ("bank", "account_number", "recipient_name", "amount")
CashoutForm = Annotated[CashoutInput, Body(media_type=RequestEncodingType.URL_ENCODED)]
"""The form as posted: Litestar reads the fields it names and ignores the others (the CSRF token)."""


async def own_order(session: AsyncSession, order_id: str, request: SignedInRequest) -> Order:
    """The signed-in person's order, or a 404: another person's order id is as good as unknown."""
    order = await order_for_user(session, order_id, request.user)
    if order is None:
        raise NotFoundException()
    return order


async def starting_form(
    session: AsyncSession, request: SignedInRequest, *, edit: bool, recipient: int | None, again: str
) -> CashoutInput:
    """What the new form starts with: empty, the kept review (`edit`), a saved recipient or a repeated order.

    A saved recipient fills the payee (the amount stays the person's choice); "cash out again" fills the payee and
    the amount of one of the person's orders; an id that is not theirs is ignored.
    """
    prefill = request.session.get(PREFILL_KEY) or {}
    if edit and (cashout := kept_cashout(request)) is not None:
        return CashoutInput.of(cashout)
    if recipient is not None and (saved := await own_recipient(session, recipient, request.user.id)):
        return CashoutInput(saved.bank_bin, saved.account_number, saved.recipient_name, prefill.get("amount", ""))
    if again and (order := await order_for_user(session, again, request.user)) is not None:
        return CashoutInput(order.bank_bin, order.account_number, order.recipient_name, str(order.fiat_amount))
    return CashoutInput(**prefill)


def form_context(
    form: CashoutInput, errors: dict[str, FieldError], settings: Settings, *, shown: Iterable[str], notice: str = ""
) -> dict[str, Any]:
    """The form page's context from one validation: `errors` are all of them, the fields `shown` say them."""
    return {
        "form": form,
        "errors": {name: error for name, error in errors.items() if name in shown},
        "banks": payable_banks(),
        "preview": preview(form, errors),
        "limits": {"minimum": settings.cashout_min_vnd, "maximum": settings.cashout_max_vnd},
        "notice": notice or None,
    }


def check(form: CashoutInput, settings: Settings) -> tuple[Cashout | None, dict[str, FieldError]]:
    return validate_form(form, min_vnd=settings.cashout_min_vnd, max_vnd=settings.cashout_max_vnd)


def preview(form: CashoutInput, errors: dict[str, FieldError]) -> dict[str, Any]:
    """The normalised values shown back while typing (the name as banks will see it, the amount formatted)."""
    return {
        "recipient_name": normalise_name(form.recipient_name) if "recipient_name" not in errors else None,
        "amount": parse_amount(form.amount) if "amount" not in errors else None,
    }


def kept_cashout(request: SignedInRequest) -> Cashout | None:
    """The cash-out on the review page, as the session keeps it between the review and Confirm."""
    return from_session(Cashout, request.session.get(REVIEW_KEY))


def qr_for(cashout: Cashout, locale: str) -> str:
    payload = transfer_payload(
        bank_bin=cashout.bank.bin,
        account=cashout.account_number,
        amount=cashout.fiat_amount,
        content=cashout.transfer_content,
    )
    return qr_svg(payload, title=translate(locale, "VietQR of the payout details"))


async def own_history(reader: AsyncEngine, order_id: str, request: SignedInRequest) -> OrderHistory:
    """The signed-in person's order with its history, or a 404 (see `own_order`)."""
    history = await own_order_history(reader, order_id, request.user)
    if history is None:
        raise NotFoundException()
    return history


def status_context(history: OrderHistory) -> dict[str, Any]:
    """What the order's pages show: its status card (`_status.html`), its history and its figures."""
    return {
        **card_context(history.card()),
        "order": history.order,
        "transitions": history.transitions,
        "masked_account": mask_account(history.order.account_number),
        "figures": order_figures(history.order),
    }


class OrderController(Controller):
    path = "/orders"
    guards = [requires_user]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/new", name="orders.new")
    async def new(
        self,
        request: SignedInRequest,
        settings: AppSettings,
        db_session: DbSession,
        edit: FromQuery[bool] = False,
        recipient: FromQuery[int | None] = None,
        again: FromQuery[str] = "",
    ) -> Template:
        """The form: empty, or filled from the kept review (`edit`), a saved recipient, or an order to repeat."""
        form = await starting_form(db_session, request, edit=edit, recipient=recipient, again=again)
        _, errors = check(form, settings)
        context = form_context(form, errors, settings, shown=())
        recipients = await saved_recipients(db_session, request.user.id)
        return Template("orders/new.html", context={**context, "recipients": recipients})

    @post("/validate", name="orders.validate", status_code=200)
    async def validate(self, settings: AppSettings, data: CashoutForm) -> Template:
        """Inline validation: new hints and errors for every field, swapped out of band so no input is replaced.

        Errors show for fields that have been filled in; an empty field is flagged when the form is submitted.
        """
        _, errors = check(data, settings)
        context = form_context(data, errors, settings, shown=[name for name in FIELDS if getattr(data, name)])
        status = 422 if context["errors"] else 200
        return Template("orders/_feedback.html", context={**context, "oob_fields": FIELDS}, status_code=status)

    @get("/banks", name="orders.banks")
    async def bank_options(self, q: FromQuery[str] = "", bank: FromQuery[str] = "") -> Template:
        """The bank list filtered by name, code or BIN, keeping the current choice selected."""
        needle = q.strip().lower()
        banks = [
            bank
            for bank in payable_banks()
            if not needle or any(needle in text.lower() for text in (bank.short_name, bank.name, bank.code, bank.bin))
        ]
        return Template("orders/_bank_options.html", context={"banks": banks, "selected": bank})

    @post("/review", name="orders.review", status_code=303)
    async def review(self, request: SignedInRequest, settings: AppSettings, data: CashoutForm) -> Response[Any]:
        """Keep the checked cash-out in the session and show it at `GET /orders/review` (Back and reload work)."""
        cashout, errors = check(data, settings)
        if cashout is None:
            context = form_context(data, errors, settings, shown=FIELDS)
            return Template("orders/new.html", context=context, status_code=422)
        request.session[REVIEW_KEY] = to_session(cashout)
        return Redirect(flow_path(request, "orders.review_page"), status_code=303)

    @get("/review", name="orders.review_page", cache_control=NO_STORE)
    async def review_page(self, request: SignedInRequest, db_reader: DbReader) -> Response[Any]:
        """The summary to confirm; once confirmed, this address leads to the order (Back never offers it again)."""
        cashout = kept_cashout(request)
        if cashout is None:
            return Redirect(flow_path(request, "orders.new"), status_code=303)
        # Confirmed already (the session keeps the review; the order says it was placed): Back leads to the order.
        if placed := await placed_from(db_reader, cashout.submission_id, request.user):
            return Redirect(flow_path(request, "orders.detail", order_id=placed), status_code=303)
        context = {
            "cashout": cashout,
            "masked_account": mask_account(cashout.account_number),
            "qr_svg": qr_for(cashout, request_locale(request)),
            "estimate": await estimate(db_reader, cashout.fiat_amount),
        }
        return Template("orders/review.html", context=context)

    @post("/", name="orders.create", status_code=303)
    async def create(
        self,
        request: SignedInRequest,
        settings: AppSettings,
        db_engine: NamedDependency[AsyncEngine],
        changes: NamedDependency[StatusChanges],
        alixpay: NamedDependency[AlixPayClient],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        cashout = kept_cashout(request)
        if cashout is None or cashout.submission_id != data.get("submission_id"):
            # An old or forged confirmation: if it was ours and already placed, show that order.
            return Redirect(flow_path(request, "orders.new"), status_code=303)
        locale = request_locale(request)
        order = await create_cashout(
            engine=db_engine,
            changes=changes,
            alixpay=alixpay,
            user=request.user,
            cashout=replace(cashout, save_recipient=data.get("save_recipient") == "1"),
            locale=locale,
        )
        if order.status == OrderStatus.REJECTED:
            request.session.pop(REVIEW_KEY, None)
            form = CashoutInput.of(cashout)
            _, errors = check(form, settings)
            notice = order.rejection_message or translate(locale, "Alix Pay did not accept this payout.")
            context = form_context(form, errors, settings, shown=(), notice=notice)
            return Template("orders/new.html", context=context, status_code=422)
        detail = flow_path(request, "orders.detail", order_id=order.external_order_id)
        # Embedded, the order page tells the partner's page the order was just placed (`order.created`).
        return Redirect(f"{detail}?placed=1" if flow_partner(request) else detail, status_code=303)

    @get("/", name="orders.list", opt={KEEPS_QUERY: True})
    async def list_orders(self, request: SignedInRequest, db_session: DbSession) -> Template:
        """The person's cash-outs, newest first, filtered and searched; keyset pages (`after`)."""
        query = OwnOrdersQuery.from_params(request.query_params.multi_items())
        page = await own_orders_page(db_session, request.user.id, query)
        context = {"query": query, "page": page, "outcomes": OUTCOMES}
        return Template("orders/list.html", context=context)

    @get("/history.csv", name="orders.history")
    async def history(
        self, request: SignedInRequest, db_sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]]
    ) -> Stream:
        """Download my history: the person's own orders (as filtered), in their language's number format."""
        query = replace(OwnOrdersQuery.from_params(request.query_params.multi_items()), after="")
        lines = history_csv(db_sessionmaker, request.user.id, query, request_locale(request))
        return csv_download(lines, "my-cash-outs.csv")

    @get("/{order_id:str}", name="orders.detail")
    async def detail(
        self, request: SignedInRequest, db_reader: DbReader, order_id: FromPath[str], placed: FromQuery[bool] = False
    ) -> Template:
        """The order page; `placed`: just confirmed (embedded, the page tells the partner `order.created`)."""
        history = await own_history(db_reader, order_id, request)
        bind_order(history.order.external_order_id)
        return Template("orders/detail.html", context={**status_context(history), "placed": placed})

    @get("/{order_id:str}/printable", name="orders.printable")
    async def printable(self, request: SignedInRequest, db_reader: DbReader, order_id: FromPath[str]) -> Template:
        """The order as a printable receipt: what was paid, to whom, when, and how it ended."""
        history = await own_history(db_reader, order_id, request)
        return Template("orders/printable.html", context=status_context(history))

    @get("/{order_id:str}/status", name="orders.status")
    async def status(self, request: SignedInRequest, db_reader: DbReader, order_id: FromPath[str]) -> Template:
        history = await own_history(db_reader, order_id, request)
        return Template("orders/_status.html", context=status_context(history))

    # The status fragment carries no form: the stream needs no CSRF cookie, and its middleware steps aside.
    @get("/{order_id:str}/events", name="orders.events", exclude_from_csrf=True, opt={LIVE_STREAM: True})
    async def events(
        self,
        request: SignedInRequest,
        db_reader: DbReader,
        live_orders: NamedDependency[LiveOrders],
        templates: NamedDependency[Environment],
        order_id: FromPath[str],
    ) -> Stream:
        """The status fragment each time a transition is stored; ends (event `done`) once the order is final."""
        user = request.user
        order = (await own_history(db_reader, order_id, request)).order  # a 404 comes before the stream's headers
        template = templates.get_template("orders/_status.html")

        def draw(card: StatusCard) -> tuple[str, bool]:
            context = card_context(card)
            # Sent over the live stream, the fragment does not poll: the stream brings every change.
            return template.render(request=request, live=True, **context), context["final"]

        def heard(card: StatusCard) -> tuple[str, bool]:
            LIVE_DRAWINGS.labels("notification").inc()
            return draw(card)

        async def read(_none: StatusCard | None) -> tuple[str, bool]:  # a card that came along goes to `heard`
            LIVE_DRAWINGS.labels("database").inc()
            return draw((await own_history(db_reader, order_id, request)).card())

        variant = (template.name, request_locale(request), flow_partner(request), user.id)
        return change_stream(
            live_orders,
            order.id or 0,
            read,
            draw=heard,
            event="status",
            variant=variant,
            alive=still_signed_in(request),
            session=session_of(request),
        )
