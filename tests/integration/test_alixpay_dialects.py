"""Contract suite: the whole cash-out against the real sandbox in every dialect, error shape and IPN secret.

Create, IPNs, details and reconciliation each time, through the app as a person uses it; plus the seed page's
example request sent byte for byte.
"""

import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import VECTORS_DIR, RsaKeys
from tests.integration.conftest import LiveApp, live_settings, sandbox_env, serving_live_app
from tests.integration.flow import Db, place_order, review, signed_in_client
from tests.oidc_support import Idp
from tests.processes import SandboxServer, running_sandbox
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier
from webapp.alixpay.errors import AlixPayOrderNotFound, AlixPayRejected
from webapp.alixpay.schemas import OrderObject, unwrap
from webapp.dev.stack import free_port
from webapp.sandbox.dialects import DIALECTS, ERROR_SHAPES
from webapp.services import alixpay_client

IPN_SECRETS = ("secret_key", "webhook_secret_key")
COMBINATIONS = list(itertools.product(DIALECTS, ERROR_SHAPES, IPN_SECRETS))


@dataclass(frozen=True)
class Combination:
    sandbox: SandboxServer
    app_port: int
    dialect: str
    error_shape: str
    ipn_secret: str


@pytest.fixture(params=COMBINATIONS, ids=["-".join(combination) for combination in COMBINATIONS])
def combination(request: pytest.FixtureRequest, rsa_keys: RsaKeys, tmp_path: Path) -> Iterator[Combination]:
    dialect, error_shape, ipn_secret = request.param
    port = free_port()
    env = sandbox_env(
        rsa_keys,
        tmp_path,
        f"http://127.0.0.1:{port}/ipn/alixpay",
        SPEED="0.3",
        RETRY_BASE_SECONDS="0.3",
        MAX_ATTEMPTS="3",
        DIALECT=dialect,
        ERROR_SHAPE=error_shape,
        IPN_SECRET=ipn_secret,
    )
    with running_sandbox(env, tmp_path / "sandbox.log") as server:
        yield Combination(server, port, dialect, error_shape, ipn_secret)


@pytest.fixture
async def contract_app(combination: Combination, rsa_keys: RsaKeys, idp: Idp, tmp_path: Path) -> AsyncIterator[LiveApp]:
    settings = live_settings(
        port=combination.app_port,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        sandbox=combination.sandbox,
        rsa_keys=rsa_keys,
        idp=idp,
        webhook_secret_key="whsk_contract_suite",
        ipn_secret=combination.ipn_secret,
    )
    async with serving_live_app(settings, combination.app_port, combination.sandbox) as app:
        yield app


async def test_the_whole_cash_out_in_every_dialect_error_shape_and_ipn_secret(
    contract_app: LiveApp, combination: Combination
) -> None:
    db = Db(contract_app)
    person = await signed_in_client(contract_app, lang="vi")

    order_id = await place_order(person)  # create, then every status by IPN
    order = await db.final(order_id, "SUCCESS")
    verdicts = {receipt.verdict for receipt in await db.receipts(order_id)}
    assert verdicts <= {"applied", "duplicate", "stale"} and "applied" in verdicts
    assert order.provider_order["description"]  # `description` or `descriptions`, parsed alike
    assert order.provider_order["bankTransfer"]["contentPayment"] == order.transfer_content  # or `content`
    if combination.dialect == "observed":
        assert order.provider_order["bankTransfer"]["bankCode"] == order.bank_code
        sent = [json.loads(receipt.body)["bankTransfer"] for receipt in await db.receipts(order_id)]  # as the IPNs came
        assert all(bank["content"] == bank["contentPayment"] == order.transfer_content for bank in sent)

    contract_app.sandbox.set_faults(drop=True)  # no IPN: only details, through reconciliation, can finish it
    quiet_id = await place_order(person)
    await db.final(quiet_id, "SUCCESS", timeout=30)
    assert await db.receipts(quiet_id) == []

    contract_app.sandbox.set_faults()
    refused = await review(person, amount="20.000")  # our minimum is 10 000; the sandbox's is 50 000
    submission = refused.text.split('name="submission_id" value="', 1)[1].split('"', 1)[0]
    answer = await person.post(
        "/orders", data={"submission_id": submission, "_csrf_token": person.cookies["csrftoken"]}
    )
    assert answer.status_code == 422
    assert "tối thiểu 50,000 VND" in answer.text  # Alix Pay's message, in the person's language

    client = alixpay_client(contract_app.settings)
    try:
        with pytest.raises(AlixPayRejected) as caught:  # an error is never taken for an answer
            await client.get_order(str(uuid.uuid4()))
    finally:
        await client.aclose()
    if combination.error_shape == "bare-400":  # `{"error": …}` cannot say "not found": a refusal, never an answer
        assert type(caught.value) is AlixPayRejected
    else:
        assert isinstance(caught.value, AlixPayOrderNotFound)
    await db.close()


SEED_EXAMPLE = (
    b'{"externalOrderId":"f1a2acc8-c865-44fe-8e6d-d0857ada4d37","partnerCode":"kaiAlinex",'
    b'"webhookSecretKey":"whsk_seed_example","cryptoCurrency":"USDT","userEmail":"dummy@abc.com",'
    b'"fiatAmount":10000,"fiatCurrency":"VND","extendInfo":{"transferContent":"transfer",'
    b'"recipientName":"NGUYEN VAN A","recipientNumber":"888812345678","recipientBankCode":"TECHCOMBANK",'
    b'"recipientType":""},"signature":"%s"}'
)


@pytest.fixture
def seed_sandbox(rsa_keys: RsaKeys, tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox holding the seed page's partner: the shared vectors' keys, code, secret and minimum."""
    vectors = json.loads((VECTORS_DIR / "vectors.json").read_text())
    env = sandbox_env(
        rsa_keys,
        tmp_path,
        "http://127.0.0.1:9/ipn",
        PARTNER_CODE="kaiAlinex",
        SECRET_KEY=vectors["secretKey"],
        PARTNER_PUBLIC_KEY_FILE=str(VECTORS_DIR / "partner_public.pem"),
        PRIVATE_KEY_FILE=str(VECTORS_DIR / "alix_private.pem"),
        MIN_AMOUNT="10000",
    )
    with running_sandbox(env, tmp_path / "sandbox.log") as server:
        yield server


def test_the_seed_pages_example_request_is_accepted_as_written(seed_sandbox: SandboxServer) -> None:
    vectors = {vector["name"]: vector for vector in json.loads((VECTORS_DIR / "vectors.json").read_text())["vectors"]}
    body = SEED_EXAMPLE % vectors["create_cashout_seed_example"]["signature"].encode()
    answer = httpx.post(
        f"{seed_sandbox.url}/api/v2/orders/create-cashout",
        content=body,
        headers={"content-type": "application/json", "lang": "en"},
    )
    assert answer.status_code == 200, answer.text
    success, data, _, _ = unwrap(answer.json())
    order = OrderObject.model_validate(data)
    assert success and order.status == "AWAITING_PAYMENT" and order.fiat_amount == 10000
    client = AlixPayClient(
        base_url=seed_sandbox.url,
        partner_code="kaiAlinex",
        secret_key=json.loads((VECTORS_DIR / "vectors.json").read_text())["secretKey"],
        webhook_secret_key="whsk_seed_example",
        signer=Signer.from_file(VECTORS_DIR / "partner_private.pem"),
        verifier=Verifier.from_files([VECTORS_DIR / "alix_public.pem"]),
    )
    assert client.verify_order(order)  # the answer is signed as the contract says


def test_a_request_without_extend_info_is_accepted(seed_sandbox: SandboxServer) -> None:
    """CONTRACT.md marks extendInfo optional; its fields then sign as empty strings."""
    secret = json.loads((VECTORS_DIR / "vectors.json").read_text())["secretKey"]
    order_id = str(uuid.uuid4())
    signed = f"kaiAlinex|{order_id}|USDT|10000||||dummy@abc.com|{secret}"
    body = {
        "externalOrderId": order_id,
        "partnerCode": "kaiAlinex",
        "webhookSecretKey": "whsk",
        "cryptoCurrency": "USDT",
        "userEmail": "dummy@abc.com",
        "fiatAmount": 10000,
        "signature": Signer.from_file(VECTORS_DIR / "partner_private.pem").sign(signed),
    }
    answer = httpx.post(f"{seed_sandbox.url}/api/v2/orders/create-cashout", json=body)
    assert answer.status_code == 200, answer.text
