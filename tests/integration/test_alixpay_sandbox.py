"""Our Alix Pay client against the sandbox over real HTTP: create, details, every rejection, bad signatures."""

import uuid
from typing import Any

import httpx
import pytest

from tests.builders import make_order
from tests.conftest import RsaKeys
from tests.integration.conftest import PARTNER_CODE, SANDBOX_SECRET, make_client
from tests.processes import SandboxServer
from webapp.alixpay import signing
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer
from webapp.alixpay.errors import AlixPayBadSignature, AlixPayOrderNotFound, AlixPayRejected
from webapp.alixpay.statuses import AlixStatus
from webapp.orders.models import Order


def new_order(**overrides: Any) -> Order:
    """An order as we store it, not yet at Alix Pay (the client sends a stored order as it is)."""
    return make_order(user_id=None, email="nguyen.van.a@example.com", **overrides)


async def test_create_then_details_returns_the_verified_order(alix_client: AlixPayClient) -> None:
    order = new_order()
    created = await alix_client.create_cashout(order)
    assert created.external_order_id == order.external_order_id
    assert created.status == AlixStatus.AWAITING_PAYMENT
    assert created.fiat_amount == 100_000
    assert created.bank_transfer and created.bank_transfer.bank_account_number == "19030413601018"
    details = await alix_client.get_order(order.external_order_id)
    assert details.external_order_id == order.external_order_id
    assert details.status in {s.value for s in AlixStatus}


async def test_same_order_twice_returns_the_existing_order(alix_client: AlixPayClient, sandbox: SandboxServer) -> None:
    order = new_order()
    first = await alix_client.create_cashout(order)
    second = await alix_client.create_cashout(order)
    assert second.external_order_id == first.external_order_id
    assert second.created_at == first.created_at
    assert (
        len([o for o in sandbox.admin("GET", "/admin/orders") if o["externalOrderId"] == order.external_order_id]) == 1
    )


async def test_same_id_with_other_details_is_refused(alix_client: AlixPayClient) -> None:
    order = new_order()
    await alix_client.create_cashout(order)
    with pytest.raises(AlixPayRejected) as caught:
        await alix_client.create_cashout(new_order(external_order_id=order.external_order_id, fiat_amount=200_000))
    assert caught.value.http_status == 409
    assert "already used" in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fiat_amount": 49_999}, "at least 50,000 VND"),
        ({"bank_code": "NOTABANK"}, "Unknown bank code"),
    ],
)
async def test_each_documented_rule_is_refused_with_a_clear_message(
    alix_client: AlixPayClient, sandbox: SandboxServer, overrides: dict[str, object], message: str
) -> None:
    order = new_order(**overrides)
    with pytest.raises(AlixPayRejected) as caught:
        await alix_client.create_cashout(order)
    assert caught.value.http_status == 400
    assert message in caught.value.message
    with pytest.raises(AlixPayOrderNotFound):
        await alix_client.get_order(order.external_order_id)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"account_number": "12345"}, "6 to 19 digits"),
        ({"account_number": "1234567890123456789012"}, "6 to 19 digits"),
        ({"recipient_name": "Nguyễn Văn Ánh"}, "capital letters"),
        ({"recipient_name": "A"}, "capital letters"),
        ({"transfer_content": "THIS CONTENT IS WAY TOO LONG"}, "at most 19"),
        ({"transfer_content": "transfer"}, "at most 19"),
        ({"user_email": "not-an-email"}, "Invalid user email"),
    ],
)
async def test_our_own_form_rules_are_a_fault_knob_not_alix_pays_default(
    alix_client: AlixPayClient, sandbox: SandboxServer, overrides: dict[str, object], message: str
) -> None:
    """Alix Pay documents none of these rules; the sandbox enforces them only when asked to."""
    sandbox.set_faults(strict_fields=True)
    refused = new_order(**overrides)
    with pytest.raises(AlixPayRejected) as caught:
        await alix_client.create_cashout(refused)
    assert caught.value.http_status == 400 and message in caught.value.message
    sandbox.set_faults()
    accepted = await alix_client.create_cashout(new_order(**overrides))
    assert accepted.status == "AWAITING_PAYMENT"


@pytest.mark.parametrize(
    ("lang", "message"), [("en", "Unknown bank code"), ("vi", "Mã ngân hàng không hợp lệ"), ("zh", "银行代码无效")]
)
async def test_rejection_message_follows_the_language(alix_client: AlixPayClient, lang: str, message: str) -> None:
    from webapp.alixpay.client import alixpay_lang

    with pytest.raises(AlixPayRejected) as caught:
        await alix_client.create_cashout(new_order(bank_code="NOTABANK"), lang=alixpay_lang(lang))
    assert caught.value.message == message


async def test_request_signed_with_another_key_is_refused(sandbox: SandboxServer, rsa_keys: RsaKeys) -> None:
    client = make_client(sandbox, rsa_keys, signer=Signer.from_file(rsa_keys.other.private))
    order = new_order()
    with pytest.raises(AlixPayRejected) as caught:
        await client.create_cashout(order)
    assert (caught.value.message, caught.value.http_status) == ("Invalid signature", 400)
    await client.aclose()
    assert order.external_order_id not in [o["externalOrderId"] for o in sandbox.admin("GET", "/admin/orders")]


async def test_wrong_secret_key_is_refused(sandbox: SandboxServer, rsa_keys: RsaKeys) -> None:
    client = make_client(sandbox, rsa_keys, secret_key="sk_wrong")
    with pytest.raises(AlixPayRejected, match="Invalid signature"):
        await client.create_cashout(new_order())
    await client.aclose()


async def test_unknown_partner_is_refused(sandbox: SandboxServer, rsa_keys: RsaKeys) -> None:
    client = make_client(sandbox, rsa_keys, partner_code="stranger")
    with pytest.raises(AlixPayRejected, match="Unknown partner"):
        await client.get_order(str(uuid.uuid4()))
    await client.aclose()


def signed_body(order: Order, client: AlixPayClient, **choices: str) -> dict[str, object]:
    return client.cashout_request(order, **choices).to_wire()


@pytest.mark.parametrize(
    "field",
    ["externalOrderId", "partnerCode", "webhookSecretKey", "cryptoCurrency", "userEmail", "fiatAmount", "signature"],
)
async def test_missing_field_is_a_400_naming_it(alix_client: AlixPayClient, sandbox: SandboxServer, field: str) -> None:
    body = signed_body(new_order(), alix_client)
    del body[field]
    response = httpx.post(f"{sandbox.url}/api/v2/orders/create-cashout", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "message": f"Missing field: {field}",
        "data": None,
        "errorCode": 1002,
    }


async def test_bad_json_is_a_400(sandbox: SandboxServer) -> None:
    response = httpx.post(f"{sandbox.url}/api/v2/orders/create-cashout", content=b"{not json", headers={"lang": "vi"})
    assert response.status_code == 400
    assert response.json()["message"] == "Nội dung JSON không hợp lệ"


async def test_other_crypto_currency_than_usdt_is_refused(alix_client: AlixPayClient, sandbox: SandboxServer) -> None:
    order = new_order()
    body = signed_body(order, alix_client, crypto_currency="BTC")  # signed as BTC: the refusal is the rule's
    response = httpx.post(f"{sandbox.url}/api/v2/orders/create-cashout", json=body)
    assert response.status_code == 400
    assert "Only USDT" in response.json()["message"]
    with pytest.raises(AlixPayOrderNotFound):
        await alix_client.get_order(order.external_order_id)


async def test_other_currency_than_vnd_is_refused(alix_client: AlixPayClient, sandbox: SandboxServer) -> None:
    body = signed_body(new_order(), alix_client)
    body["fiatCurrency"] = "USD"
    response = httpx.post(f"{sandbox.url}/api/v2/orders/create-cashout", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == "Only VND is supported"


async def test_details_of_an_unknown_order_is_not_found(alix_client: AlixPayClient) -> None:
    with pytest.raises(AlixPayOrderNotFound):
        await alix_client.get_order(str(uuid.uuid4()))


@pytest.mark.parametrize("fault", ["wrong_key", "corrupt"])
async def test_answer_with_a_bad_signature_is_not_trusted(
    alix_client: AlixPayClient, sandbox: SandboxServer, fault: str
) -> None:
    sandbox.set_faults(answer_signature=fault)
    with pytest.raises(AlixPayBadSignature):
        await alix_client.create_cashout(new_order())


async def test_timeout_after_create_is_resolved_by_details_without_a_second_order(
    sandbox: SandboxServer, rsa_keys: RsaKeys
) -> None:
    sandbox.set_faults(create_response="hang", hang_seconds=3)
    client = make_client(sandbox, rsa_keys, timeout=0.5)
    order = new_order()
    resolved = await client.create_cashout_or_resolve(order)
    await client.aclose()
    assert resolved.external_order_id == order.external_order_id
    matching = [o for o in sandbox.admin("GET", "/admin/orders") if o["externalOrderId"] == order.external_order_id]
    assert len(matching) == 1


async def test_server_error_after_create_is_resolved_by_details(
    alix_client: AlixPayClient, sandbox: SandboxServer
) -> None:
    sandbox.set_faults(create_response="error_500")
    order = new_order()
    resolved = await alix_client.create_cashout_or_resolve(order)
    assert resolved.status == AlixStatus.AWAITING_PAYMENT
    assert len(sandbox.order(order.external_order_id)["history"]) >= 1


async def test_unreachable_alix_pay_is_an_unknown_outcome(rsa_keys: RsaKeys) -> None:
    from webapp.alixpay.errors import AlixPayOutcomeUnknown
    from webapp.dev.stack import free_port

    client = make_client(
        SandboxServer(f"http://127.0.0.1:{free_port()}", None, None),
        rsa_keys,  # type: ignore[arg-type]
    )
    with pytest.raises(AlixPayOutcomeUnknown):
        await client.create_cashout(new_order())
    await client.aclose()


def test_sandbox_builds_the_same_strings_as_the_contract_vectors() -> None:
    """The sandbox's own string building, pinned to the shared vectors like ours."""
    import json

    from tests.conftest import VECTORS_DIR
    from webapp.sandbox import contract

    vectors = {v["name"]: v for v in json.loads((VECTORS_DIR / "vectors.json").read_text())["vectors"]}
    secret = json.loads((VECTORS_DIR / "vectors.json").read_text())["secretKey"]
    body = {
        "partnerCode": "kaiAlinex",
        "externalOrderId": "0b9f3c1e-7d2a-4e55-9a61-2f8d4c3b1a00",
        "cryptoCurrency": "USDT",
        "fiatAmount": 2500000,
        "userEmail": "nguyen.van.a+vn@example.com",
        "extendInfo": {
            "recipientBankCode": "VIETCOMBANK",
            "recipientNumber": "0011004123456",
            "transferContent": "RUT TIEN 7Q2K9M",
        },
    }
    assert contract.cashout_signed_string(body, secret) == vectors["create_cashout_vietcombank"]["string"]
    details = {"partnerCode": "kaiAlinex", "externalOrderId": "f1a2acc8-c865-44fe-8e6d-d0857ada4d37"}
    assert contract.details_signed_string(details, secret) == vectors["order_details"]["string"]
    for status in ("AWAITING_PAYMENT", "SUCCESS", "FAIL"):
        order = {
            "externalOrderId": details["externalOrderId"],
            "type": "CASH_OUT",
            "fiatAmount": 10000.0,
            "status": status,
        }
        assert contract.order_signed_string(order, secret) == vectors[f"ipn_{status.lower()}"]["string"]
    # and the two sides agree on a request our client signs
    assert signing.details_string(partner_code=PARTNER_CODE, external_order_id="x", secret_key=SANDBOX_SECRET) == (
        contract.details_signed_string({"partnerCode": PARTNER_CODE, "externalOrderId": "x"}, SANDBOX_SECRET)
    )


async def test_client_errors_and_logs_never_carry_key_material(
    sandbox: SandboxServer, rsa_keys: RsaKeys, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from webapp.alixpay.errors import AlixPayError

    caplog.set_level(logging.DEBUG)
    secret_lines = [line for line in rsa_keys.partner.private.read_text().splitlines() if "-----" not in line]
    client = make_client(sandbox, rsa_keys, timeout=0.5)
    texts = [repr(client)]
    for faults, order in (
        ({"answer_signature": "wrong_key"}, new_order()),
        ({"create_response": "hang", "hang_seconds": 2}, new_order()),
        ({}, new_order(bank_code="NOTABANK")),
    ):
        sandbox.set_faults(**faults)
        with pytest.raises(AlixPayError) as caught:
            await client.create_cashout(order)
        texts += [str(caught.value), repr(caught.value), repr(caught.value.__cause__), repr(caught.value.__context__)]
    await client.aclose()
    texts.append(caplog.text)
    assert not any(line in text for line in secret_lines for text in texts)
    assert SANDBOX_SECRET not in " ".join(texts)


async def test_the_bank_may_be_sent_as_its_bin(sandbox: SandboxServer, rsa_keys: RsaKeys) -> None:
    """`ALIXPAY_BANK_CODE_STYLE=bin`: the BIN is what is signed and sent, and Alix Pay's list knows it."""
    from webapp.banks.directory import alix_bank_code
    from webapp.orders.forms import payable_bank

    bank = payable_bank("970407")
    client = make_client(sandbox, rsa_keys, bank_code_style="bin")
    order = new_order(bank_code=alix_bank_code(bank, client.bank_code_style))
    assert client.cashout_request(order).extend_info.recipient_bank_code == "970407"
    created = await client.create_cashout(order)
    await client.aclose()
    assert created.status == "AWAITING_PAYMENT"
    assert sandbox.order(order.external_order_id)["request"]["extendInfo"]["recipientBankCode"] == "970407"


async def test_an_unsupported_lang_header_is_refused(alix_client: AlixPayClient, sandbox: SandboxServer) -> None:
    with pytest.raises(AlixPayRejected, match="Unsupported language"):
        await alix_client.create_cashout(new_order(), lang="fr")
