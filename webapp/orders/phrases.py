"""What an order's history says, in English as stored; support's timeline shows each in the agent's language."""

from webapp.i18n import N_, Phrase

CREATE_REQUEST = Phrase(N_("%(amount)s VND to %(bank)s, content %(content)s, lang %(lang)s"))
ACCEPTED = Phrase(N_("Alix Pay accepted it: %(status)s"))
OUTCOME_UNKNOWN = Phrase(N_("create outcome unknown; details did not know the order yet"))
POLL_FAILED = Phrase(N_("poll failed: %(error)s"))
POLL_SAYS = Phrase(N_("Alix Pay says %(status)s"))
POLL_FOUND = Phrase(N_("poll found %(status)s; no IPN had said so"))
POLL_BEHIND = Phrase(N_("poll says %(status)s but we have %(ours)s"))
NOT_KNOWN = Phrase(N_("Alix Pay does not know this order"))
NO_SUCH_ORDER = Phrase(N_("we have %(ours)s; Alix Pay has no such order"))
NEVER_TOOK_EFFECT = Phrase(N_("Alix Pay has no such order: the create never took effect"))
AMOUNT_DIFFERS = Phrase(N_("fiatAmount %(theirs)s is not the order's %(ours)s"))
TYPE_DIFFERS = Phrase(N_("type %(theirs)s is not the order's %(ours)s"))
FIAT_CURRENCY_DIFFERS = Phrase(N_("fiatCurrency %(theirs)s is not %(ours)s"))
TOKEN_CURRENCY_DIFFERS = Phrase(N_("tokenTransfer.currency %(theirs)s is not %(ours)s"))

PHRASES = (
    CREATE_REQUEST,
    ACCEPTED,
    OUTCOME_UNKNOWN,
    POLL_FAILED,
    POLL_SAYS,
    POLL_FOUND,
    POLL_BEHIND,
    NOT_KNOWN,
    NO_SUCH_ORDER,
    NEVER_TOOK_EFFECT,
    AMOUNT_DIFFERS,
    TYPE_DIFFERS,
    FIAT_CURRENCY_DIFFERS,
    TOKEN_CURRENCY_DIFFERS,
)
