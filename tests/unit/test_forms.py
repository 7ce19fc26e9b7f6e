import pytest

from webapp.i18n import translate
from webapp.orders.forms import (
    CashoutInput,
    mask_account,
    new_transfer_content,
    normalise_account,
    normalise_name,
    parse_amount,
    validate,
)

VALID = CashoutInput(
    bank="970407", account_number="1903 0413-6010.18", recipient_name="Nguyễn Văn Ánh", amount="100.000"
)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Nguyễn Văn Ánh", "NGUYEN VAN ANH"),
        ("Đặng Thị Hương", "DANG THI HUONG"),
        ("trần   đức lộc", "TRAN DUC LOC"),
        ("Lê Ngọc Ẩn", "LE NGOC AN"),
        ("Nguye\u0302\u0303n Va\u0306n", "NGUYEN VAN"),  # decomposed input
        ("O'Brien-Smith 3rd", "OBRIENSMITH RD"),
    ],
)
def test_names_are_normalised_as_banks_hold_them(raw: str, name: str) -> None:
    assert normalise_name(raw) == name


def test_account_keeps_leading_zeros_and_drops_grouping() -> None:
    assert normalise_account(" 0352-350.917 ") == "0352350917"


@pytest.mark.parametrize(
    ("raw", "amount"),
    [("100000", 100000), ("100.000", 100000), ("100,000", 100000), ("1 000 000", 1000000), ("50.000 ₫", 50000)],
)
def test_amounts_with_separators_parse(raw: str, amount: int) -> None:
    assert parse_amount(raw) == amount


@pytest.mark.parametrize("raw", ["", "abc", "100000.5", "10,00", "-5", "1e6"])
def test_amounts_that_are_not_whole_vnd_are_refused(raw: str) -> None:
    assert parse_amount(raw) is None


def test_valid_form_is_cleaned() -> None:
    cashout, errors = validate(VALID, min_vnd=50_000, max_vnd=500_000_000)
    assert errors == {}
    assert cashout is not None
    assert (cashout.bank.alix_code, cashout.account_number, cashout.recipient_name, cashout.fiat_amount) == (
        "TECHCOMBANK",
        "19030413601018",
        "NGUYEN VAN ANH",
        100_000,
    )


RULES = {
    "bank": (
        {"bank": "970414"},
        {"en": "Choose the recipient's bank", "vi": "Hãy chọn ngân hàng", "zh": "请从列表中选择"},
    ),
    "account_number": (
        {"account_number": "12345"},
        {"en": "6 to 19 digits", "vi": "6 đến 19 chữ số", "zh": "6 到 19 位"},
    ),
    "recipient_name": (
        {"recipient_name": "李"},
        {"en": "2 to 50 letters", "vi": "2 đến 50 chữ cái", "zh": "2 到 50 个字母"},
    ),
    "amount": ({"amount": "10.5"}, {"en": "whole amount", "vi": "số nguyên", "zh": "整数"}),
}


@pytest.mark.parametrize("field", list(RULES))
@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
def test_each_rule_has_a_message_in_each_language(field: str, locale: str) -> None:
    change, messages = RULES[field]
    _, errors = validate(CashoutInput(**{**VALID.__dict__, **change}), min_vnd=50_000, max_vnd=500_000_000)
    assert set(errors) == {field}
    assert messages[locale] in translate(locale, errors[field].message, minimum="50,000", maximum="500,000,000")


@pytest.mark.parametrize("amount", ["49999", "500000001"])
def test_amount_limits_come_from_settings(amount: str) -> None:
    _, errors = validate(CashoutInput(**{**VALID.__dict__, "amount": amount}), min_vnd=50_000, max_vnd=500_000_000)
    assert errors["amount"].params == {"minimum": 50_000, "maximum": 500_000_000}


def test_transfer_content_follows_the_contract() -> None:
    contents = {new_transfer_content() for _ in range(50)}
    assert len(contents) == 50
    assert all(len(c) <= 19 and c.replace(" ", "").isalnum() and c.isascii() and c.isupper() for c in contents)


def test_account_is_masked_but_for_the_last_four() -> None:
    assert mask_account("19030413601018") == "••••••••••1018"
