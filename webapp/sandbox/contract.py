"""The contract as Alix Pay's side reads it: signed strings, field rules and error messages.

The signed strings are written here again on purpose, from CONTRACT.md and not from `webapp.alixpay.signing`,
so a mistake on one side is caught by the other; both are pinned to the shared vectors by tests.
"""

import csv
import re
from functools import cache
from pathlib import Path
from typing import Any

BANKS_CSV = Path(__file__).with_name("banks.csv")
LANGUAGES = ("en", "vi", "cn")


@cache
def known_banks() -> frozenset[str]:
    """The sandbox's own list of the banks Alix Pay pays out to: codes and BINs (never the app's table)."""
    with BANKS_CSV.open(encoding="utf-8", newline="") as csv_file:
        rows = list(csv.DictReader(csv_file))
    return frozenset(row["code"] for row in rows) | frozenset(row["bin"] for row in rows)


def _int_text(amount: Any) -> str:
    number = float(amount)
    if not number.is_integer():
        raise ValueError("amount has decimals")
    return str(int(number))


def cashout_signed_string(body: dict[str, Any], secret_key: str) -> str:
    extend = body.get("extendInfo") or {}
    return (
        f"{body['partnerCode']}|{body['externalOrderId']}|{body['cryptoCurrency']}|{_int_text(body['fiatAmount'])}|"
        f"{extend.get('recipientBankCode', '')}|{extend.get('recipientNumber', '')}|"
        f"{extend.get('transferContent', '')}|{body['userEmail']}|{secret_key}"
    )


def details_signed_string(body: dict[str, Any], secret_key: str) -> str:
    return f"{body['partnerCode']}|{body['externalOrderId']}|{secret_key}"


def order_signed_string(order: dict[str, Any], secret_key: str) -> str:
    return f"{order['externalOrderId']}|{order['type']}|{_int_text(order['fiatAmount'])}|{order['status']}|{secret_key}"


CASHOUT_REQUIRED = (
    "externalOrderId",
    "partnerCode",
    "webhookSecretKey",
    "cryptoCurrency",
    "userEmail",
    "fiatAmount",
    "signature",
)
DETAILS_REQUIRED = ("partnerCode", "externalOrderId", "signature")
STRICT_EXTEND_REQUIRED = ("transferContent", "recipientName", "recipientNumber", "recipientBankCode")
"""Required only with the `strict_fields` fault: the seed page marks `extendInfo` and its fields optional."""

ACCOUNT_RE = re.compile(r"^[0-9]{6,19}$")
NAME_RE = re.compile(r"^[A-Z](?:[A-Z ]{0,48})[A-Z]$")
CONTENT_RE = re.compile(r"^[A-Z0-9 ]{1,19}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Alix Pay answers in the `lang` header's language: en, vi or cn.
MESSAGES: dict[str, dict[str, str]] = {
    "ok": {"en": "Success", "vi": "Thành công", "cn": "成功"},
    "bad_json": {"en": "Malformed JSON body", "vi": "Nội dung JSON không hợp lệ", "cn": "JSON 格式错误"},
    "missing_field": {"en": "Missing field: {field}", "vi": "Thiếu trường: {field}", "cn": "缺少字段：{field}"},
    "unknown_partner": {"en": "Unknown partner", "vi": "Đối tác không tồn tại", "cn": "未知的合作伙伴"},
    "bad_signature": {"en": "Invalid signature", "vi": "Chữ ký không hợp lệ", "cn": "签名无效"},
    "currency": {"en": "Only VND is supported", "vi": "Chỉ hỗ trợ VND", "cn": "仅支持越南盾 (VND)"},
    "crypto": {"en": "Only USDT is supported", "vi": "Chỉ hỗ trợ USDT", "cn": "仅支持 USDT"},
    "amount": {
        "en": "The amount must be a whole number of at least {minimum} VND",
        "vi": "Số tiền phải là số nguyên, tối thiểu {minimum} VND",
        "cn": "金额必须为整数，且不少于 {minimum} 越南盾",
    },
    "bank": {"en": "Unknown bank code", "vi": "Mã ngân hàng không hợp lệ", "cn": "银行代码无效"},
    "account": {
        "en": "The account number must be 6 to 19 digits",
        "vi": "Số tài khoản phải gồm 6 đến 19 chữ số",
        "cn": "账号必须为 6 到 19 位数字",
    },
    "name": {
        "en": "The recipient name must be 2 to 50 capital letters without accents",
        "vi": "Tên người nhận phải gồm 2 đến 50 chữ in hoa không dấu",
        "cn": "收款人姓名必须为 2 到 50 个不带重音的大写字母",
    },
    "content": {
        "en": "The transfer content must be at most 19 letters, digits or spaces",
        "vi": "Nội dung chuyển khoản tối đa 19 chữ cái, chữ số hoặc khoảng trắng",
        "cn": "转账内容最多 19 个字母、数字或空格",
    },
    "email": {"en": "Invalid user email", "vi": "Email người dùng không hợp lệ", "cn": "用户邮箱无效"},
    "lang": {"en": "Unsupported language", "vi": "Ngôn ngữ không được hỗ trợ", "cn": "不支持的语言"},
    "conflict": {
        "en": "This externalOrderId was already used for a different order",
        "vi": "externalOrderId này đã được dùng cho một lệnh khác",
        "cn": "该 externalOrderId 已用于其他订单",
    },
    "not_found": {"en": "Order not found", "vi": "Không tìm thấy lệnh", "cn": "未找到订单"},
    "internal": {"en": "Internal server error", "vi": "Lỗi hệ thống", "cn": "系统内部错误"},
}

ERROR_CODES = {
    "bad_json": 1001,
    "missing_field": 1002,
    "unknown_partner": 1003,
    "bad_signature": 1004,
    "lang": 1005,
    "currency": 1101,
    "crypto": 1102,
    "amount": 1103,
    "bank": 1104,
    "account": 1105,
    "name": 1106,
    "content": 1107,
    "email": 1108,
    "conflict": 1201,
    "not_found": 1404,
    "internal": 1500,
}


def message(key: str, lang: str | None, **values: object) -> str:
    texts = MESSAGES[key]
    return texts.get(lang or "en", texts["en"]).format(**values)


def missing_field(body: dict[str, Any], required: tuple[str, ...]) -> str | None:
    for field in required:
        if body.get(field) in (None, ""):
            return field
    return None


def cashout_rule_violation(body: dict[str, Any], min_amount: int) -> tuple[str, dict[str, object]] | None:
    """The first documented rule the request breaks, as (message key, values), or None."""
    extend = body.get("extendInfo") or {}
    amount = body["fiatAmount"]
    if body.get("fiatCurrency", "VND") != "VND":
        return "currency", {}
    if body["cryptoCurrency"] != "USDT":
        return "crypto", {}
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount != int(amount) or amount < min_amount:
        return "amount", {"minimum": f"{min_amount:,}"}
    if extend.get("recipientBankCode") and str(extend["recipientBankCode"]) not in known_banks():
        return "bank", {}
    return None


def strict_rule_violation(body: dict[str, Any]) -> tuple[str, dict[str, object]] | None:
    """Our own client's form rules (CONTRACT.md §4), enforced only with the `strict_fields` fault."""
    extend = body.get("extendInfo") or {}
    if missing := missing_field(extend, STRICT_EXTEND_REQUIRED):
        return "missing_field", {"field": f"extendInfo.{missing}"}
    checks = (
        ("account", bool(ACCOUNT_RE.match(str(extend["recipientNumber"])))),
        ("name", bool(NAME_RE.match(str(extend["recipientName"]))) and "  " not in str(extend["recipientName"])),
        ("content", bool(CONTENT_RE.match(str(extend["transferContent"])))),
        ("email", bool(EMAIL_RE.match(str(body["userEmail"])))),
    )
    for key, valid in checks:
        if not valid:
            return key, {}
    return None
