import pytest

from webapp import i18n
from webapp.dev.catalogs import SOURCE_LOCALE, extract, read_catalog


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("vi", "zh", "en", "vi"),
        (None, "zh", "vi", "zh"),
        ("xx", "zh", "vi", "zh"),
        (None, None, "fr-FR, vi-VN;q=0.8, en;q=0.5", "vi"),
        (None, None, "en;q=0.2, zh-Hans-CN;q=0.9", "zh"),
        (None, None, "vi;q=0, zh;q=0.1", "zh"),
        (None, None, "de, fr", "en"),
        (None, None, None, "en"),
        ("zh_TW", None, None, "zh"),
    ],
)
def test_locale_is_chosen_by_query_then_cookie_then_header_then_english(
    query: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert i18n.negotiate(query, cookie, accept) == expected


def test_accept_language_with_garbage_quality_is_ignored() -> None:
    assert i18n.parse_accept_language("vi;q=abc, zh") == ["zh"]


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_catalogue_is_complete_and_current(locale: str) -> None:
    """Every message in the code and templates now is translated, none fuzzy, none left over."""
    catalog = read_catalog(locale)
    wanted = {message.id for message in extract() if message.id}
    present = {message.id for message in catalog if message.id}
    assert wanted - present == set(), f"run `make i18n`: {locale} lacks messages"
    assert present - wanted == set(), f"run `make i18n`: {locale} has messages no longer used"
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: untranslated {message.id!r}"
        assert not message.fuzzy, f"{locale}: fuzzy {message.id!r}"


@pytest.mark.parametrize("locale", ["vi", "zh"])
def test_translations_differ_from_english(locale: str) -> None:
    """A catalogue filled by copying English would pass the completeness check; this one would not."""
    catalog = read_catalog(locale)
    same = [m.id for m in catalog if m.id and m.string == m.id]
    assert same == [], f"{locale}: copied English {same}"


def test_translate_uses_the_catalogue() -> None:
    assert i18n.translate("vi", "Page not found") == "Không tìm thấy trang"
    assert i18n.translate("zh", "Page not found") == "页面未找到"
    assert i18n.translate(SOURCE_LOCALE, "Page not found") == "Page not found"
