"""The one Jinja environment: autoescaped, translated per request, usable outside a request (SSE fragments)."""

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from litestar.connection import ASGIConnection

from webapp import i18n
from webapp.auth.guards import current_user
from webapp.auth.session import CurrentUser
from webapp.security_headers import csp_nonce

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


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
def _csp_nonce(context: Context) -> str:
    request = context.get("request")
    return csp_nonce(request.scope) if isinstance(request, ASGIConnection) else ""


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
    )
    return env


def render_fragment(env: Environment, name: str, *, locale: str, **context: Any) -> str:
    """Render a `_fragment.html` outside a request handler, e.g. as an SSE payload after an IPN."""
    return env.get_template(name).render(locale=locale, **context)
