"""`AlixPayClient`: signs every request, verifies every answer's signature before returning anything."""

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from webapp.alixpay import signing
from webapp.alixpay.crypto import Signer, Verifier
from webapp.alixpay.errors import (
    AlixPayBadSignature,
    AlixPayError,
    AlixPayOrderNotFound,
    AlixPayOutcomeUnknown,
    AlixPayRejected,
)
from webapp.alixpay.parsing import parse_json
from webapp.alixpay.schemas import CRYPTO_CURRENCY, CashoutRequest, DetailsRequest, ExtendInfo, OrderObject, unwrap

logger = logging.getLogger(__name__)

CREATE_CASHOUT_PATH = "/api/v2/orders/create-cashout"
DETAILS_PATH = "/api/v2/orders/details"
# Decision (CONTRACT.md §5, error-code table unpublished): "no such order" is HTTP 404, or this `errorCode` in an
# envelope answered with HTTP 200. A bare `{"error": …}` cannot say it, so such an answer is a refusal.
NOT_FOUND_ERROR_CODE = 1404
# Our UI locale → Alix Pay's `lang` header (CONTRACT.md §2: en|cn|vi).
ALIXPAY_LANGUAGES = {"en": "en", "vi": "vi", "zh": "cn"}


def alixpay_lang(locale: str) -> str:
    return ALIXPAY_LANGUAGES.get(locale, "en")


class Payout(Protocol):
    """What we ask Alix Pay to pay out, every field already normalised by our form rules (our stored order is one)."""

    @property
    def external_order_id(self) -> str: ...
    @property
    def user_email(self) -> str: ...
    @property
    def fiat_amount(self) -> int: ...
    @property
    def bank_code(self) -> str: ...
    @property
    def account_number(self) -> str: ...
    @property
    def recipient_name(self) -> str: ...
    @property
    def transfer_content(self) -> str: ...


class AlixPayClient:
    def __init__(
        self,
        *,
        base_url: str,
        partner_code: str,
        secret_key: str,
        webhook_secret_key: str,
        signer: Signer,
        verifier: Verifier,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ipn_secret: str = "secret_key",  # noqa: S107 (a choice, not a secret)
        bank_code_style: str = "code",
        headers: dict[str, str] | None = None,
        on_call: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """`on_call(path, outcome, seconds)` hears of every call, for metrics.

        The outcome is ok, rejected, not_found, unknown or bad_signature.
        """
        self.partner_code = partner_code
        self._secret_key = secret_key
        self._webhook_secret_key = webhook_secret_key
        self._signer = signer
        self._verifier = verifier
        # Decision (CONTRACT.md §5): which secret ends an IPN's signed string is a setting, here and in the sandbox.
        self._ipn_secret_key = webhook_secret_key if ipn_secret == "webhook_secret_key" else secret_key  # noqa: S105
        self.bank_code_style = bank_code_style
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport, headers=headers)
        self._on_call = on_call

    def __repr__(self) -> str:
        return f"AlixPayClient(base_url={str(self._http.base_url)!r}, partner_code={self.partner_code!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def cashout_request(self, order: Payout, *, crypto_currency: str = CRYPTO_CURRENCY) -> CashoutRequest:
        """The signed create request (always USDT from our form; another currency only to test Alix Pay's refusal)."""
        text = signing.create_cashout_string(
            partner_code=self.partner_code,
            external_order_id=order.external_order_id,
            crypto_currency=crypto_currency,
            fiat_amount=order.fiat_amount,
            bank_code=order.bank_code,
            account_number=order.account_number,
            transfer_content=order.transfer_content,
            user_email=order.user_email,
            secret_key=self._secret_key,
        )
        return CashoutRequest(
            external_order_id=order.external_order_id,
            partner_code=self.partner_code,
            webhook_secret_key=self._webhook_secret_key,
            crypto_currency=crypto_currency,
            user_email=order.user_email,
            fiat_amount=order.fiat_amount,
            extend_info=ExtendInfo(
                transfer_content=order.transfer_content,
                recipient_name=order.recipient_name,
                recipient_number=order.account_number,
                recipient_bank_code=order.bank_code,
            ),
            signature=self._signer.sign(text),
        )

    async def create_cashout(self, order: Payout, *, lang: str = "en") -> OrderObject:
        """Create the order once. On `AlixPayOutcomeUnknown` or `AlixPayBadSignature`, call `get_order`, never this."""
        body = self.cashout_request(order).to_wire()
        return await self._call(CREATE_CASHOUT_PATH, body, order.external_order_id, lang)

    async def get_order(self, external_order_id: str, *, lang: str = "en") -> OrderObject:
        text = signing.details_string(
            partner_code=self.partner_code, external_order_id=external_order_id, secret_key=self._secret_key
        )
        request = DetailsRequest(
            partner_code=self.partner_code, external_order_id=external_order_id, signature=self._signer.sign(text)
        )
        return await self._call(DETAILS_PATH, request.to_wire(), external_order_id, lang)

    async def create_cashout_or_resolve(self, order: Payout, *, lang: str = "en") -> OrderObject:
        """Create; if the outcome is unknown, ask for the order instead of creating it a second time.

        Raises `AlixPayOrderNotFound` when Alix Pay confirms the create never took effect.
        """
        try:
            return await self.create_cashout(order, lang=lang)
        except (AlixPayOutcomeUnknown, AlixPayBadSignature) as exc:
            logger.warning("create %s: outcome unknown (%s); resolving by details", order.external_order_id, exc)
        try:
            return await self.get_order(order.external_order_id, lang=lang)
        except AlixPayOrderNotFound:
            raise
        except AlixPayRejected as exc:  # a refused details call says nothing about the create
            raise AlixPayOutcomeUnknown(f"details refused while resolving the create: {exc.message}") from None

    def verify_order(self, order: OrderObject) -> bool:
        """An answer to create or details: signed with our `secretKey`."""
        return self._verify(order, self._secret_key)

    def verify_ipn(self, order: OrderObject) -> bool:
        """An IPN body: signed with the secret `ALIXPAY_IPN_SECRET` names."""
        return self._verify(order, self._ipn_secret_key)

    def _verify(self, order: OrderObject, secret_key: str) -> bool:
        text = signing.order_string(
            external_order_id=order.external_order_id,
            order_type=order.type,
            fiat_amount=order.fiat_amount,
            status=order.status,
            secret_key=secret_key,
        )
        return self._verifier.verify(text, order.signature)

    async def _call(self, path: str, body: dict[str, Any], external_order_id: str, lang: str) -> OrderObject:
        started, outcome = time.perf_counter(), "unknown"
        try:
            order = await self._call_once(path, body, external_order_id, lang)
            outcome = "ok"
            return order
        except AlixPayError as exc:
            outcome = exc.outcome
            raise
        finally:
            if self._on_call is not None:
                self._on_call(path, outcome, time.perf_counter() - started)

    async def _call_once(self, path: str, body: dict[str, Any], external_order_id: str, lang: str) -> OrderObject:
        try:
            response = await self._http.post(path, json=body, headers={"lang": lang})
        except httpx.TimeoutException:
            raise AlixPayOutcomeUnknown(f"timed out waiting for {path}") from None
        except httpx.HTTPError as exc:
            raise AlixPayOutcomeUnknown(f"{type(exc).__name__} calling {path}") from None
        if response.status_code >= 500:
            raise AlixPayOutcomeUnknown(f"HTTP {response.status_code} from {path}")
        try:
            payload = parse_json(response.content)
        except ValueError:
            payload = None
        success, data, message, error_code = unwrap(payload)
        if response.status_code == 404 or (not success and error_code == NOT_FOUND_ERROR_CODE):
            raise AlixPayOrderNotFound(message or "order not found", http_status=404, error_code=error_code)
        if response.status_code >= 400 or not success:
            raise AlixPayRejected(message or "Invalid request", http_status=response.status_code, error_code=error_code)
        return self._verified(data, external_order_id)

    def _verified(self, data: dict[str, Any] | None, external_order_id: str) -> OrderObject:
        try:
            order = OrderObject.model_validate(data)
        except ValidationError:
            raise AlixPayBadSignature("the answer is not a well-formed order object") from None
        if not self.verify_order(order):
            raise AlixPayBadSignature(f"the answer for {external_order_id} is not signed by a trusted Alix Pay key")
        if order.external_order_id != external_order_id:
            raise AlixPayBadSignature(f"asked for {external_order_id}, the answer is about another order")
        return order
