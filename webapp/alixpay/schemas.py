"""Wire models of the Alix Pay contract (not database tables); the order object is parsed leniently."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from webapp.alixpay.parsing import bounded_decimal, vnd_amount

CRYPTO_CURRENCY = "USDT"
FIAT_CURRENCY = "VND"
VndAmount = Annotated[int, BeforeValidator(vnd_amount)]
"""Whole VND, shape-checked before conversion (see parsing.py)."""
Amount = Annotated[Decimal, BeforeValidator(bounded_decimal)]
"""A token amount, rate or fee: bounded digits, no exponent, finite."""


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class ExtendInfo(WireModel):
    transfer_content: str
    recipient_name: str
    recipient_number: str
    recipient_bank_code: str
    recipient_type: str = ""


class CashoutRequest(WireModel):
    external_order_id: str
    partner_code: str
    webhook_secret_key: str
    crypto_currency: str = CRYPTO_CURRENCY
    user_email: str
    fiat_amount: int
    fiat_currency: str = FIAT_CURRENCY
    extend_info: ExtendInfo
    signature: str = ""


class DetailsRequest(WireModel):
    partner_code: str
    external_order_id: str
    signature: str = ""


class TokenTransfer(WireModel):
    currency: str | None = None
    network: str | None = None
    price: Amount | None = None
    amount: Amount | None = None
    wallet_address: str | None = Field(default=None, validation_alias=AliasChoices("walletAddress", "address"))
    tx_hash: str | None = None


class BankTransfer(WireModel):
    bank_account_name: str | None = None
    bank_account_number: str | None = None
    bank_name: str | None = None
    content_payment: str | None = Field(default=None, validation_alias=AliasChoices("contentPayment", "content"))
    bank_code: str | None = None
    total_payment: Amount | None = None
    qr_url: str | None = Field(default=None, validation_alias=AliasChoices("qrUrl", "qrCodeUrl"))


class Fees(WireModel):
    system_fee: Amount | None = None
    processing_fee: Amount | None = None


class OrderObject(WireModel):
    """The order as Alix Pay describes it, in create/details answers and in IPN bodies.

    `status` stays a plain string: an unknown status must be stored as received (see statuses.py).
    """

    external_order_id: str
    type: str = ""
    fiat_amount: VndAmount
    fiat_currency: str | None = None
    paid_amount: Amount | None = None
    token_transfer: TokenTransfer | None = None
    bank_transfer: BankTransfer | None = None
    fees: Fees | None = None
    status: str
    description: str | None = Field(default=None, validation_alias=AliasChoices("description", "descriptions"))
    created_at: datetime | None = None
    expires_at: datetime | None = None
    signature: str = ""


class Envelope(WireModel):
    success: bool
    message: str = ""
    data: dict[str, Any] | None = None
    error_code: int | None = None


def unwrap(body: Any) -> tuple[bool, dict[str, Any] | None, str, int | None]:
    """Decision (CONTRACT.md §2.1): accept the envelope and a bare order object alike.

    Returns (success, order data, message, error code).
    """
    if not isinstance(body, dict):
        return False, None, "", None
    if "success" in body:
        envelope = Envelope.model_validate(body)
        return envelope.success, envelope.data, envelope.message, envelope.error_code
    if "error" in body:
        return False, None, str(body["error"]), None
    return True, body, "", None
