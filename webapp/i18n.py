"""Locale negotiation and babel translations: `?lang=`, the session's or cookie's choice, `Accept-Language`, `en`."""

import io
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import parse_qs

from babel import localedata
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.types import Message, Scope

KEEPS_QUERY = "language_switch_keeps_query"
"""`opt={KEEPS_QUERY: True}` on a page whose query string is what it shows (a search): its language links keep
it. Every other page's links carry `lang` alone, so a token in an address (a launch, a sign-in's callback) never
ends up in a page."""

LOCALES = ("en", "vi", "zh")
DEFAULT_LOCALE = "en"
BABEL_LOCALES = {"en": "en_US", "vi": "vi_VN", "zh": "zh_Hans_CN"}
"""Our UI locales as Babel formats numbers, money and dates for them."""
LOCALE_COOKIE = "lang"
LOCALE_SESSION_KEY = "locale"
"""A language kept in the session: embedded pages, where the partner chose it and our cookie is not sent."""
LOCALE_DIR = Path(__file__).parent / "locale"
# Autonyms: each language is named in itself, so a reader finds theirs whatever the page's language.
LANGUAGE_NAMES = {"en": "English", "vi": "Tiếng Việt", "zh": "中文"}


def supported(value: str | None) -> str | None:
    """Map a tag such as `vi-VN` or `zh-Hans-CN` to one of our locales, or None."""
    if not value:
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LOCALES else None


def known_or_default(locale: str | None) -> str:
    """A stored locale (an order's, a mail's) if we still speak it, else the default."""
    return locale if locale in LOCALES else DEFAULT_LOCALE


@lru_cache(maxsize=4096)  # an order's amount is shown again at every change of its live status card
def format_vnd(amount: int | float, locale: str) -> str:
    """A VND amount the way the reader writes money (`100.000 ₫` in Vietnamese, `₫100,000` in English)."""
    return format_currency(amount, "VND", locale=BABEL_LOCALES[known_or_default(locale)])


def parse_accept_language(header: str) -> list[str]:
    """Language tags in order of preference (q-values honoured, `q=0` dropped, stable for equal weights)."""
    weighted = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if locale := supported(candidate):
            return locale
    for tag in parse_accept_language(accept_language or ""):
        if locale := supported(tag):
            return locale
    return DEFAULT_LOCALE


def request_locale(connection: ASGIConnection) -> str:
    """The connection's locale, negotiated once and kept in the scope state."""
    state = connection.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    if "locale" not in state:
        session = connection.scope.get("session")
        kept = session.get(LOCALE_SESSION_KEY) if isinstance(session, dict) else None
        state["locale"] = negotiate(
            connection.query_params.get("lang"),
            kept or connection.cookies.get(LOCALE_COOKIE),
            connection.headers.get("accept-language"),
        )
    return state["locale"]


@cache
def translations(locale: str) -> NullTranslations:
    """Compile the `.po` catalogue in memory, so a checkout needs no build step and `.mo` never goes stale."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as gettext does
    buffer.seek(0)
    return Translations(buffer)


def load_languages() -> None:
    """Read every language's catalogue and Babel's formats for it now, not at its first page or live update.

    Babel reads a locale's data on its first use: ~3.5 MB in all, which the first streams and pages in each language
    would add to a serving process (the live fan-out's memory per watcher, docs/PERFORMANCE.md). Read before serving,
    it is part of the start-up heap that `app.py::settle_startup_heap` puts out of the garbage collector's sight.
    """
    for locale in LOCALES:
        translations(locale)
        localedata.load(BABEL_LOCALES[locale])


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


def translate(locale: str, message: str, **variables: object) -> str:
    text = translations(locale).gettext(message)
    return text % variables if variables else text


def lang_attribute(locale: str) -> str:
    return {"zh": "zh-Hans"}.get(locale, locale)


def locale_choices(current: str) -> Mapping[str, str]:
    return {code: name for code, name in LANGUAGE_NAMES.items() if code != current}


async def remember_chosen_locale(message: Message, scope: Scope) -> None:
    """A `?lang=` choice is kept in a cookie, so the language stays as the person moves on."""
    if message["type"] != "http.response.start" or scope["type"] != "http":
        return
    chosen = supported(parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [""])[-1])
    if chosen:
        cookie = Cookie(key=LOCALE_COOKIE, value=chosen, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))


class Phrase:
    """A sentence the history stores in English (it is a log too) and a page shows in the reader's language.

    `phrase(**values)` is the stored English; `explain` finds the phrase again in a stored text and translates it,
    so the words live once, here and in the catalogues, and rows written before a translation existed read too.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        pattern = re.escape(message)
        for name in re.findall(r"%\\\((\w+)\\\)s", pattern):
            pattern = pattern.replace(rf"%\({name}\)s", f"(?P<{name}>(?:(?!; ).)+?)", 1)  # "; " joins phrases
        self.pattern = re.compile(pattern)

    def __call__(self, **values: object) -> str:
        return self.message % values

    def explain(self, text: str, locale: str) -> str | None:
        if (match := self.pattern.fullmatch(text)) is None:
            return None
        values = {name: translations(locale).gettext(value) for name, value in match.groupdict().items()}
        return translate(locale, self.message, **values) if values else translate(locale, self.message)


def explain(text: str, phrases: Iterable[Phrase], locale: str) -> str | None:
    """`text` in the reader's language if it is one phrase, or phrases joined by "; "; None if it is not."""
    phrases = tuple(phrases)
    parts = [text] if any(phrase.pattern.fullmatch(text) for phrase in phrases) else text.split("; ")
    said = [next((found for phrase in phrases if (found := phrase.explain(part, locale))), None) for part in parts]
    return None if not text or None in said else "; ".join(str(part) for part in said)
