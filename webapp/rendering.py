"""Jinja without a request: the templates, translation by the render's `locale`, and the reader's money and time.

Emails and live fragments are drawn here outside any request; the web layer (`templating.py`) adds what a page
needs from its request (the person, the flow, the CSP nonce, `url_for`) to the same environment.
"""

import functools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_skeleton, format_time, format_timedelta, get_timezone_gmt
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from litestar.connection import ASGIConnection

from webapp import i18n
from webapp.alixpay.schemas import CRYPTO_CURRENCY

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DISPLAY_TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
"""Where the money lands: every time a person reads is in Vietnam time, with its offset."""


def locale_of(context: Context) -> str:
    """The explicit `locale` of an out-of-request render, else the request's negotiated locale."""
    if locale := context.get("locale"):
        return locale
    request = context.get("request")
    return i18n.request_locale(request) if isinstance(request, ASGIConnection) else i18n.DEFAULT_LOCALE


def babel_locale(context: Context) -> str:
    return i18n.BABEL_LOCALES.get(locale_of(context), i18n.BABEL_LOCALES[i18n.DEFAULT_LOCALE])


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.translations(locale_of(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return i18n.translations(locale_of(context)).ngettext(singular, plural, count)


@pass_context
def _current_locale(context: Context) -> str:
    return locale_of(context)


@pass_context
def _support_contact(context: Context) -> str:
    """The support address from the settings (the `support_address` of an out-of-request render, e.g. an email)."""
    request = context.get("request")
    if isinstance(request, ASGIConnection):
        return request.app.state.settings.support_contact_email or ""
    return context.get("support_address") or ""


@pass_context
def _vnd(context: Context, amount: int | float | None) -> str:
    """A VND amount the way the reader writes money (`100.000 ₫` in Vietnamese, `₫100,000` in English)."""
    return "" if amount is None else i18n.format_vnd(amount, locale_of(context))


def timezone_of(context: Context) -> ZoneInfo:
    """The page's time zone: the console's own (`timezone` in its context), else Vietnam's."""
    return context.get("timezone") or DISPLAY_TIMEZONE


FORMATTED_KEPT = 4096
"""Times formatted for reading, kept per (time, zone, language): an order's live status card shows the times of all
its steps again at every change, and Babel's formatting of them was a tenth of a relaying instance's CPU per
update (docs/PERFORMANCE.md, live fan-out)."""


@pass_context
def _datetime(context: Context, value: datetime | None) -> str:
    """Vietnam time, where the money lands (or the console's), with its offset so nobody has to guess."""
    return "" if value is None else _medium_datetime(value, timezone_of(context), babel_locale(context))


@functools.lru_cache(maxsize=FORMATTED_KEPT)
def _medium_datetime(value: datetime, timezone: ZoneInfo, locale: str) -> str:
    local = value.astimezone(timezone)
    return f"{format_datetime(local, 'medium', locale=locale)} ({get_timezone_gmt(local, locale=locale)})"


@pass_context
def _token(context: Context, amount: Decimal | None, unit: str = CRYPTO_CURRENCY) -> str:
    """A token amount to its 6 places, trailing zeros dropped, in the reader's digits: `2,66664 USDT` in Vietnamese."""
    if amount is None:
        return ""
    return f"{format_decimal(amount, format='#,##0.######', locale=babel_locale(context))} {unit}"


@pass_context
def _when(context: Context, value: datetime | None) -> str:
    """Compact Vietnam time: the time alone today, else a short date and time (the page says the zone once)."""
    if value is None:
        return ""
    timezone = timezone_of(context)
    return _compact_datetime(value, timezone, babel_locale(context), today=datetime.now(timezone).date())


@functools.lru_cache(maxsize=FORMATTED_KEPT)
def _compact_datetime(value: datetime, timezone: ZoneInfo, locale: str, *, today: date) -> str:
    local = value.astimezone(timezone)
    if local.date() == today:
        return format_time(local, "short", locale=locale)
    return format_datetime(local, "short", locale=locale)


@pass_context
def _age(context: Context, value: datetime | None) -> str:
    """How long ago, in words of the reader's language ("3 hours"), for a queue or a list of orders."""
    if value is None:
        return ""
    return format_timedelta(datetime.now(UTC) - value, locale=babel_locale(context))


@pass_context
def _clock(context: Context, value: datetime) -> str:
    """The hour a chart's bar stands for, as the reader writes times ("14:00")."""
    return format_time(value, "HH:mm", locale=babel_locale(context))


@pass_context
def _short_date(context: Context, value: datetime) -> str:
    """A day without its year, in the reader's order and words ("Dec 5", "5 thg 12", "12月5日")."""
    return format_skeleton("MMMd", value, locale=babel_locale(context))


@pass_context
def _percent(context: Context, value: float | None) -> str:
    return "—" if value is None else format_percent(value, locale=babel_locale(context))


@pass_context
def _duration(context: Context, seconds: float | None, *, narrow: bool = False) -> str:
    """A length of time in the reader's words, rounded to its largest unit ("4 minutes"; narrow: "4m", "4 phút")."""
    if seconds is None:
        return "—"
    style = "narrow" if narrow else "long"
    return format_timedelta(timedelta(seconds=seconds), format=style, locale=babel_locale(context))


@pass_context
def _number(context: Context, value: float | None) -> str:
    return "—" if value is None else format_decimal(value, locale=babel_locale(context))


def make_environment() -> Environment:
    """The environment every template is drawn with: autoescaped, translated, with the reader's formats."""
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
        lang_attribute=i18n.lang_attribute,
        locale_choices=i18n.locale_choices,
        support_contact=_support_contact,
    )
    env.filters.update(vnd=_vnd, datetime=_datetime, token=_token, when=_when, age=_age)
    env.filters.update(clock=_clock, short_date=_short_date, percent=_percent, duration=_duration, number=_number)
    return env


def render_fragment(env: Environment, name: str, *, locale: str, **context: Any) -> str:
    """Render a template outside a request handler: an email, or a `_fragment.html` as an SSE payload."""
    return env.get_template(name).render(locale=locale, **context)
