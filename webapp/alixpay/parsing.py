"""Cheap, bounded parsing of untrusted input: JSON bodies and amounts are checked by shape before conversion.

Anyone can POST to the IPN endpoint and anything can be typed in a form, so nothing here may cost more than
microseconds per byte: `Decimal("1e1000000")` is cheap, but turning it into an `int` takes tens of seconds, and
`json.loads` of 60 000 nested brackets raises `RecursionError`. Every refusal is a `ValueError`.
"""

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40
MAX_VND_DIGITS = 15
"""Up to 999 trillion VND: far above any cash-out, far below anything costly to convert."""
MAX_DECIMAL_INTEGER_DIGITS = 20
MAX_DECIMAL_PLACES = 18
"""Token amounts and rates (USDT has 6 decimals on most networks; 18 leaves room for any other token)."""

_VND_TEXT = re.compile(rf"[0-9]{{1,{MAX_VND_DIGITS}}}(?:\.0{{1,8}})?")
_DECIMAL_TEXT = re.compile(rf"-?[0-9]{{1,{MAX_DECIMAL_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?")
_JSON_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects, found without recursion (strings are skipped whole)."""
    depth = deepest = 0
    for token in _JSON_NESTING.finditer(body):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in (b"]", b"}"):
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number here")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError("number too long")
    return int(text)


def _bounded_float(text: str) -> Decimal:
    """Fractions stay exact as `Decimal` (never a float's rounding); exponents are left for the shape checks."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError("number too long")
    return Decimal(text)


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for untrusted bytes: depth and number length bounded, NaN and Infinity refused.

    Nesting is measured only when there are enough opening brackets for it to matter: a flat IPN body (one
    object) skips the scan, which would otherwise be a few percent of an IPN's cost.
    """
    if body.count(b"[") + body.count(b"{") > max_depth and json_depth(body) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth}")
    return json.loads(body, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_refuse_constant)


def vnd_amount(value: object) -> int:
    """A positive whole VND amount of at most 15 digits; `10000`, `"10000"`, `10000.0` are all `10000`.

    Decision (CONTRACT.md §2.1, §4): VND has no decimals, so `100000.5` is refused, never rounded.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("not a whole amount")
        amount = int(value) if abs(value) < 10**MAX_VND_DIGITS else -1
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() >= MAX_VND_DIGITS or value != value.to_integral_value():
            raise ValueError("not a whole amount of at most 15 digits")
        amount = int(value)
    elif isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS or not _VND_TEXT.fullmatch(value):
            raise ValueError("not a whole amount of at most 15 digits")
        amount = int(value.partition(".")[0])
    else:
        raise ValueError(f"{type(value).__name__} is not an amount")
    if not 0 < amount < 10**MAX_VND_DIGITS:
        raise ValueError("the amount must be positive and at most 15 digits")
    return amount


def bounded_decimal(value: object) -> Decimal:
    """A token amount, rate or fee: at most 20 digits before the point and 18 after, no exponent, finite."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        value = repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() >= MAX_DECIMAL_INTEGER_DIGITS:
            raise ValueError("not a bounded number")
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -MAX_DECIMAL_PLACES:
            raise ValueError("too many decimal places")
        return value
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or len(text) > MAX_NUMBER_CHARS or not _DECIMAL_TEXT.fullmatch(text):
        raise ValueError("not a plain decimal number")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError("not a plain decimal number") from None
