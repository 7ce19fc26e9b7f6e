"""The signed-string layouts of the Alix Pay contract (CONTRACT.md §2): the one place each layout is decided.

Every field is joined with `|` and the partner `secretKey` comes last; the UTF-8 bytes of that string are signed.
"""

from decimal import Decimal

from webapp.alixpay.parsing import vnd_amount

SEPARATOR = "|"


def amount_text(value: int | float | str | Decimal) -> str:
    """Decision: `fiatAmount` is signed as the integer with no decimals or separators (`10000`).

    The shape is checked before any conversion (`parsing.vnd_amount`), so an unsigned hostile body costs nothing.
    """
    return str(vnd_amount(value))


def create_cashout_string(
    *,
    partner_code: str,
    external_order_id: str,
    crypto_currency: str,
    fiat_amount: int | str | Decimal,
    bank_code: str,
    account_number: str,
    transfer_content: str,
    user_email: str,
    secret_key: str,
) -> str:
    """The create-cashout request signature.

    Documented as
    `partnerCode|externalOrderId|currency|fiatAmount|bankCode|bankAccountNumber|content|userEmail|secretKey`.

    Decision: currency = `cryptoCurrency`, bankCode = `extendInfo.recipientBankCode`, bankAccountNumber =
    `extendInfo.recipientNumber`, content = `extendInfo.transferContent`.
    """
    return SEPARATOR.join(
        [
            partner_code,
            external_order_id,
            crypto_currency,
            amount_text(fiat_amount),
            bank_code,
            account_number,
            transfer_content,
            user_email,
            secret_key,
        ]
    )


def details_string(*, partner_code: str, external_order_id: str, secret_key: str) -> str:
    return SEPARATOR.join([partner_code, external_order_id, secret_key])


def order_string(
    *, external_order_id: str, order_type: str, fiat_amount: int | str | Decimal, status: str, secret_key: str
) -> str:
    """The order object's signature on create/details answers and IPNs.

    Layout: `externalOrderId|type|fiatAmount|status|secretKey`.

    Decision (CONTRACT.md §5, unsettled): answers end with our `secretKey`; IPNs with the secret
    `ALIXPAY_IPN_SECRET` names (`secretKey` by default, or the order's `webhookSecretKey`): see `AlixPayClient`.
    """
    return SEPARATOR.join([external_order_id, order_type, amount_text(fiat_amount), status, secret_key])
