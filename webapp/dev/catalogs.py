"""Keep the babel catalogues in step with the code: extract, update, and fill the `en` source catalogue.

`python -m webapp i18n` runs it; translators then fill in `vi` and `zh` (a test refuses gaps and fuzzy entries).
"""

import copy
import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from webapp.i18n import LOCALE_DIR, LOCALES

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "translate": (2,)}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
METHOD_MAP = [("webapp/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
OPTIONS_MAP = {"templates/**.html": JINJA_OPTIONS, "templates/**.txt": JINJA_OPTIONS}
SOURCE_LOCALE = "en"


def extract() -> Catalog:
    """Every translatable message in the code and templates, as they are now."""
    template = Catalog(project="webapp", fuzzy=False)
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS_MAP, keywords=KEYWORDS
    ):
        template.add(message, None, context=context)
    return template


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read_catalog(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as po_file:
        return read_po(po_file, locale=locale)


def update_catalogs() -> None:
    template = extract()
    for locale in LOCALES:
        path = catalog_path(locale)
        catalog = read_catalog(locale) if path.exists() else Catalog(locale=locale, project="webapp")
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)  # update() shares Message objects
        catalog.fuzzy = False
        catalog.obsolete.clear()
        if locale == SOURCE_LOCALE:
            for message in catalog:  # a plural's string is a tuple, empty strings in it when new
                if message.id and not (all(message.string) if isinstance(message.string, tuple) else message.string):
                    message.string = message.id
        buffer = io.BytesIO()
        write_po(buffer, catalog, omit_header=False, no_location=True, sort_output=True, width=120)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
