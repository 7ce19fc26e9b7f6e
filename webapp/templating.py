"""The one Jinja environment: autoescaped, translated per request, usable outside a request (SSE fragments)."""

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time, get_timezone_gmt
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from litestar.connection import ASGIConnection
from litestar.plugins.jinja import JinjaTemplateEngine

from webapp import i18n
from webapp.alixpay.schemas import CRYPTO_CURRENCY
from webapp.auth.guards import current_user
from webapp.auth.session import CurrentUser
from webapp.embed.access import REFUSALS, EmbedContext, embed_context
from webapp.flows import flow_partner, flow_path
from webapp.orders.forms import FieldError
from webapp.orders.statuses import status_info
from webapp.security_headers import csp_nonce

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DISPLAY_TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _locale_of(context: Context) -> str:
    """The explicit `locale` of an out-of-request render, else the request's negotiated locale."""
    if locale := context.get("locale"):
        return locale
    request = context.get("request")
    return i18n.request_locale(request) if isinstance(request, ASGIConnection) else i18n.DEFAULT_LOCALE


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.translations(_locale_of(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return i18n.translations(_locale_of(context)).ngettext(singular, plural, count)


@pass_context
def _current_locale(context: Context) -> str:
    return _locale_of(context)


@pass_context
def _current_user(context: Context) -> CurrentUser | None:
    request = context.get("request")
    return current_user(request) if isinstance(request, ASGIConnection) else None


@pass_context
def _support_contact(context: Context) -> str:
    """The support address from the settings (the `support_address` of an out-of-request render, e.g. an email)."""
    request = context.get("request")
    if isinstance(request, ASGIConnection):
        return request.app.state.settings.support_contact_email or ""
    return context.get("support_address") or ""


@pass_context
def _embedded(context: Context) -> EmbedContext | None:
    request = context.get("request")
    return embed_context(request) if isinstance(request, ASGIConnection) else None


@pass_context
def _page_layout(context: Context) -> str:
    """Pages shared by both flows extend our layout, or the partner's chrome-less one when embedded."""
    request = context.get("request")
    return "embed/base.html" if isinstance(request, ASGIConnection) and flow_partner(request) else "base.html"


def _flow_url(context: dict[str, Any], name: str, **params: Any) -> str:
    """`url_for` that keeps an embedded page's links, forms and streams inside the partner's flow."""
    return flow_path(context["request"], name, **params)


@pass_context
def _csp_nonce(context: Context) -> str:
    request = context.get("request")
    return csp_nonce(request.scope) if isinstance(request, ASGIConnection) else ""


def _babel_locale(context: Context) -> str:
    return i18n.BABEL_LOCALES.get(_locale_of(context), i18n.BABEL_LOCALES[i18n.DEFAULT_LOCALE])


@pass_context
def _vnd(context: Context, amount: int | float | None) -> str:
    """A VND amount the way the reader writes money (`100.000 ₫` in Vietnamese, `₫100,000` in English)."""
    if amount is None:
        return ""
    return format_currency(amount, "VND", locale=_babel_locale(context))


@pass_context
def _datetime(context: Context, value: datetime | None) -> str:
    """Vietnam time, where the money lands, with its offset so nobody has to guess."""
    if value is None:
        return ""
    local = value.astimezone(DISPLAY_TIMEZONE)
    locale = _babel_locale(context)
    return f"{format_datetime(local, 'medium', locale=locale)} ({get_timezone_gmt(local, locale=locale)})"


@pass_context
def _token(context: Context, amount: Decimal | None, unit: str = CRYPTO_CURRENCY) -> str:
    """A token amount to its 6 places, trailing zeros dropped, in the reader's digits: `2,66664 USDT` in Vietnamese."""
    if amount is None:
        return ""
    return f"{format_decimal(amount, format='#,##0.######', locale=_babel_locale(context))} {unit}"


@pass_context
def _when(context: Context, value: datetime | None) -> str:
    """Compact Vietnam time: the time alone today, else a short date and time (the page says the zone once)."""
    if value is None:
        return ""
    local = value.astimezone(DISPLAY_TIMEZONE)
    locale = _babel_locale(context)
    if local.date() == datetime.now(DISPLAY_TIMEZONE).date():
        return format_time(local, "short", locale=locale)
    return format_datetime(local, "short", locale=locale)


@pass_context
def _error_text(context: Context, error: FieldError) -> str:
    locale = _locale_of(context)
    params = {name: format_decimal(value, locale=_babel_locale(context)) for name, value in error.params.items()}
    text = i18n.translations(locale).gettext(error.message)
    return text % params if params else text


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        current_locale=_current_locale,
        current_user=_current_user,
        csp_nonce=_csp_nonce,
        lang_attribute=i18n.lang_attribute,
        locale_choices=i18n.locale_choices,
        error_text=_error_text,
        status_info=status_info,
        embedded=_embedded,
        support_contact=_support_contact,
        page_layout=_page_layout,
        refusals=REFUSALS,
    )
    env.filters.update(vnd=_vnd, datetime=_datetime, token=_token, when=_when)
    return env


def make_template_engine() -> JinjaTemplateEngine:
    engine = JinjaTemplateEngine.from_environment(make_environment())
    engine.register_template_callable("url_for", _flow_url)  # replaces Litestar's, which knows no flows
    return engine


def render_fragment(env: Environment, name: str, *, locale: str, **context: Any) -> str:
    """Render a `_fragment.html` outside a request handler, e.g. as an SSE payload after an IPN."""
    return env.get_template(name).render(locale=locale, **context)
