"""The ways Alix Pay is known to answer, chosen per sandbox start (settings) and per request (headers).

Dialects of successful answers and IPNs:
- `documented` (the seed page): a bare order object; `description`, `bankTransfer.qrUrl`.
- `observed` (a third-party client written against the live API): the envelope
  `{"success", "message", "data", "errorCode"}`; `descriptions`, `bankTransfer.qrCodeUrl`, and
  `bankTransfer.bankCode` / `bankTransfer.content` beside `bankTransfer.contentPayment` (a public client of the
  live API reads the latter).

Error shapes: `envelope-4xx` (the envelope with `success: false` on HTTP 4xx), `envelope-200` (the same on
HTTP 200) and `bare-400` (HTTP 400 `{"error": message}`, as on the seed page).
"""

from typing import Any, Literal

from litestar.datastructures import Headers

Dialect = Literal["documented", "observed"]
ErrorShape = Literal["envelope-4xx", "envelope-200", "bare-400"]
DIALECTS: tuple[Dialect, ...] = ("documented", "observed")
ERROR_SHAPES: tuple[ErrorShape, ...] = ("envelope-4xx", "envelope-200", "bare-400")
DIALECT_HEADER = "x-sandbox-dialect"
ERROR_SHAPE_HEADER = "x-sandbox-error-shape"


def chosen_dialect(headers: Headers, default: Dialect) -> Dialect:
    value = headers.get(DIALECT_HEADER, default)
    return value if value in DIALECTS else default  # type: ignore[return-value]


def chosen_error_shape(headers: Headers, default: ErrorShape) -> ErrorShape:
    value = headers.get(ERROR_SHAPE_HEADER, default)
    return value if value in ERROR_SHAPES else default  # type: ignore[return-value]


def order_fields(data: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The order object with the dialect's field names (the signed fields never change)."""
    if dialect != "observed":
        return data
    data = dict(data)
    data["descriptions"] = data.pop("description", "")
    bank = dict(data.get("bankTransfer") or {})
    bank["qrCodeUrl"] = bank.pop("qrUrl", "")
    bank["content"] = bank.get("contentPayment", "")
    bank.setdefault("bankCode", bank.get("bankName", ""))
    data["bankTransfer"] = bank
    return data


def success_body(data: dict[str, Any], dialect: str, message: str) -> dict[str, Any]:
    if dialect == "observed":
        return {"success": True, "message": message, "data": data, "errorCode": 0}
    return data


def error_answer(shape: str, status_code: int, message: str, error_code: int) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a refusal in the chosen shape; a server error stays a 5xx in every shape."""
    if status_code >= 500:
        return status_code, {"success": False, "message": message, "data": None, "errorCode": error_code}
    if shape == "bare-400":
        return 400, {"error": message}
    envelope = {"success": False, "message": message, "data": None, "errorCode": error_code}
    return (200 if shape == "envelope-200" else status_code), envelope
