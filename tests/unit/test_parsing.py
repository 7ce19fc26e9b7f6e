"""Bounded parsing of untrusted input: shapes are refused before any costly conversion."""

from datetime import timedelta
from decimal import Decimal

import pytest

from webapp.alixpay.parsing import MAX_JSON_DEPTH, bounded_decimal, json_depth, parse_json, vnd_amount
from webapp.alixpay.signing import amount_text
from webapp.ipn.service import RetryPolicy
from webapp.orders.forms import parse_amount


@pytest.mark.parametrize(
    ("value", "amount"),
    [(100000, 100000), ("100000", 100000), (100000.0, 100000), (Decimal("1E+5"), 100000), ("50000.00", 50000)],
)
def test_whole_vnd_amounts_are_accepted_in_every_wire_form(value: object, amount: int) -> None:
    assert vnd_amount(value) == amount


HOSTILE_AMOUNTS = [
    "100000.5",
    Decimal("100000.5"),
    100000.5,
    "1e5000",
    Decimal("1e1000000"),
    Decimal("1e-1000000"),
    "9" * 5000,
    Decimal("9" * 5000),
    10**16,
    float("inf"),
    float("nan"),
    Decimal("NaN"),
    Decimal("-Infinity"),
    -5,
    0,
    True,
    None,
    [1],
    "",
    " 100000",
]


@pytest.mark.parametrize("value", HOSTILE_AMOUNTS, ids=repr)
def test_anything_else_is_refused_by_its_shape(value: object) -> None:
    with pytest.raises(ValueError):
        vnd_amount(value)
    with pytest.raises(ValueError):
        amount_text(value)  # the signed string is built only from a checked amount


@pytest.mark.parametrize("value", ["2.666640", 25000, Decimal("0.5"), "-1.25", 0.2])
def test_token_amounts_rates_and_fees_keep_their_decimals(value: object) -> None:
    assert bounded_decimal(value) == Decimal(str(value))


@pytest.mark.parametrize("value", ["1e300000", Decimal("1e300000"), Decimal("1e-50"), "NaN", True, "1" * 30, "0x10"])
def test_unbounded_decimals_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        bounded_decimal(value)


def test_json_nesting_is_measured_without_recursion_and_strings_do_not_count() -> None:
    assert json_depth(b"[" * 100_000) == 100_000
    assert json_depth(b'{"a": "[[[[[[\\"[[[", "b": [[1]]}') == 3
    with pytest.raises(ValueError, match="deeper"):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    deepest_allowed = parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    for _ in range(MAX_JSON_DEPTH - 1):
        (deepest_allowed,) = deepest_allowed
    assert deepest_allowed == []
    many_brackets_in_a_string = b'{"note": "' + b"[{" * MAX_JSON_DEPTH + b'"}'
    assert parse_json(many_brackets_in_a_string) == {"note": "[{" * MAX_JSON_DEPTH}


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": ' + b"9" * 50 + b"}"])
def test_json_constants_and_endless_numbers_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(body)


def test_json_fractions_stay_exact() -> None:
    assert parse_json(b'{"price": 25000.1, "amount": 4}') == {"price": Decimal("25000.1"), "amount": 4}


@pytest.mark.parametrize("raw", ["9" * 5000, "1e400", "1" + "0" * 40])
def test_form_amounts_of_any_length_are_refused_not_converted(raw: str) -> None:
    assert parse_amount(raw) is None


def test_ipn_retry_backoff_doubles_from_the_base() -> None:
    policy = RetryPolicy(base=timedelta(seconds=30), max_attempts=5)
    assert [policy.next_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
