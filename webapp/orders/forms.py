"""The cash-out form's rules (CONTRACT.md §4, VietQR FORMAT.md §2): normalise what people type, or say why not."""

import re
import secrets
import unicodedata
from dataclasses import dataclass, field

from webapp.banks.directory import Bank, all_banks
from webapp.i18n import N_

ACCOUNT_RE = re.compile(r"^[0-9]{6,19}$")
MAX_AMOUNT_CHARS = 32
"""Checked before the pattern and `int()`, so 5 000 pasted digits cost nothing and are never a 500."""
AMOUNT_RE = re.compile(r"^(?:\d+|\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+)$")
CONTENT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud to a bank without confusion


def new_transfer_content() -> str:
    """`RUT TIEN` and a random reference: ASCII, ≤ 19 characters, no personal data."""
    return "RUT TIEN " + "".join(secrets.choice(CONTENT_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class FieldError:
    message: str
    params: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CashoutInput:
    """The form as typed (strings), so it can be shown again exactly."""

    bank: str = ""
    account_number: str = ""
    recipient_name: str = ""
    amount: str = ""

    @classmethod
    def of(cls, cashout: "Cashout") -> "CashoutInput":
        """The form filled in again from checked values (to edit them, or after a rejection)."""
        return cls(cashout.bank.bin, cashout.account_number, cashout.recipient_name, str(cashout.fiat_amount))


@dataclass(frozen=True)
class Cashout:
    """A cash-out that passed the form's rules: what the review page shows and Confirm places, kept in the session.

    Each one is a new submission: its `submission_id` makes Confirm idempotent (a double click finds the same
    order) and its `transfer_content` is the reference the recipient's bank statement shows.
    """

    bank: Bank
    account_number: str
    recipient_name: str
    fiat_amount: int
    submission_id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    transfer_content: str = field(default_factory=new_transfer_content)
    save_recipient: bool = True
    """Keep the recipient once paid out: the review page's "Save this recipient" box, read at Confirm."""


def normalise_account(raw: str) -> str:
    """Drop the spaces, dots and dashes people type to group digits; leading zeros stay."""
    return re.sub(r"[\s.\-]", "", raw)


def normalise_name(raw: str) -> str:
    """To what banks hold: ASCII capitals and single spaces (`Nguyễn Văn Ánh` → `NGUYEN VAN ANH`)."""
    text = raw.replace("Đ", "D").replace("đ", "d")
    text = "".join(char for char in unicodedata.normalize("NFD", text) if not unicodedata.combining(char))
    text = re.sub(r"[^A-Z ]", "", text.upper())
    return re.sub(r" +", " ", text).strip()


def parse_amount(raw: str) -> int | None:
    """Whole VND, with or without thousands separators (`100000`, `100.000`, `100,000`); None otherwise."""
    text = raw.strip().removesuffix("₫").removesuffix("VND").strip()
    if len(text) > MAX_AMOUNT_CHARS or not AMOUNT_RE.match(text):
        return None
    return int(re.sub(r"\D", "", text))


def payable_bank(value: str) -> Bank | None:
    return next((bank for bank in all_banks() if bank.bin == value and bank.payable), None)


def validate(form: CashoutInput, *, min_vnd: int, max_vnd: int) -> tuple[Cashout | None, dict[str, FieldError]]:
    errors: dict[str, FieldError] = {}
    bank = payable_bank(form.bank.strip())
    if bank is None:
        errors["bank"] = FieldError(N_("Choose the recipient's bank from the list."))
    account = normalise_account(form.account_number)
    if not ACCOUNT_RE.match(account):
        errors["account_number"] = FieldError(N_("Enter an account number of 6 to 19 digits."))
    name = normalise_name(form.recipient_name)
    if not 2 <= len(name) <= 50:
        errors["recipient_name"] = FieldError(N_("Enter the recipient's name as the bank has it (2 to 50 letters)."))
    amount = parse_amount(form.amount)
    if amount is None:
        errors["amount"] = FieldError(N_("Enter a whole amount in VND, without decimals."))
    elif not min_vnd <= amount <= max_vnd:
        errors["amount"] = FieldError(
            N_("Enter an amount from %(minimum)s to %(maximum)s VND."),
            {"minimum": min_vnd, "maximum": max_vnd},
        )
    if errors or bank is None or amount is None:
        return None, errors
    return Cashout(bank=bank, account_number=account, recipient_name=name, fiat_amount=amount), {}


def mask_account(account: str) -> str:
    return "•" * max(0, len(account) - 4) + account[-4:]
