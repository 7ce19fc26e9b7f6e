"""What support's own audit rows say, in English as stored; the timeline shows each in the agent's language."""

from collections.abc import Callable

from webapp.i18n import N_, Phrase, explain
from webapp.orders.phrases import PHRASES as ORDER_PHRASES

REVEALED = Phrase(N_("%(field)s shown"))
DRY_RUN = Phrase(N_("dry run: %(verdict)s"))
NOTE_ON_ORDER = Phrase(N_("note on order %(order)s"))
NOTE_ON_CUSTOMER = Phrase(N_("note on customer %(customer)s"))

PHRASES = (*ORDER_PHRASES, REVEALED, DRY_RUN, NOTE_ON_ORDER, NOTE_ON_CUSTOMER)


def explainer(locale: str) -> Callable[[str], str | None]:
    """What a page calls on a stored explanation: the agent's words for it, or None (shown as stored, in English)."""
    return lambda text: explain(text, PHRASES, locale)
