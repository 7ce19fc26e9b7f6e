"""The Jinja environment of pages: `rendering.py`'s, plus what a page takes from its request.

The person signed in, the flow (our own pages or a partner's embedded ones), the CSP nonce and `url_for` that
keeps an embedded page inside its flow. Fragments drawn outside a request (live updates) use the same
environment, so they look like the page they are part of.
"""

from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_decimal
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar.connection import ASGIConnection
from litestar.plugins.jinja import JinjaTemplateEngine

from webapp import i18n, rendering
from webapp.auth.guards import person_of
from webapp.auth.session import CurrentUser
from webapp.embed.access import REFUSALS, EmbedContext, embed_context
from webapp.embed.events import event_type
from webapp.flows import flow_partner, flow_path
from webapp.orders.forms import FieldError
from webapp.orders.statuses import status_info
from webapp.security_headers import csp_nonce


@pass_context
def _current_user(context: Context) -> CurrentUser | None:
    request = context.get("request")
    return person_of(request) if isinstance(request, ASGIConnection) else None


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
def _this_page_in(context: Context, locale: str) -> str:
    """This page's address in another language; a search page keeps what it shows (`i18n.KEEPS_QUERY`)."""
    request = context["request"]
    handler = request.scope.get("route_handler")
    kept = handler is not None and handler.opt.get(i18n.KEEPS_QUERY)
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "lang"] if kept else []
    return f"{request.url.path}?{urlencode([*query, ('lang', locale)])}"


@pass_context
def _csp_nonce(context: Context) -> str:
    request = context.get("request")
    return csp_nonce(request.scope) if isinstance(request, ASGIConnection) else ""


@pass_context
def _error_text(context: Context, error: FieldError) -> str:
    locale = rendering.locale_of(context)
    params = {
        name: format_decimal(value, locale=rendering.babel_locale(context)) for name, value in error.params.items()
    }
    text = i18n.translations(locale).gettext(error.message)
    return text % params if params else text


def make_environment() -> Environment:
    env = rendering.make_environment()
    env.globals.update(
        current_user=_current_user,
        csp_nonce=_csp_nonce,
        error_text=_error_text,
        status_info=status_info,
        partner_event=event_type,
        embedded=_embedded,
        page_layout=_page_layout,
        this_page_in=_this_page_in,
        refusals=REFUSALS,
    )
    return env


def make_template_engine() -> JinjaTemplateEngine:
    engine = JinjaTemplateEngine.from_environment(make_environment())
    engine.register_template_callable("url_for", _flow_url)  # replaces Litestar's, which knows no flows
    return engine
