"""Our signer against the fixed vectors made with Alix Pay's own Node reference code (byte for byte)."""

import json
from decimal import Decimal

import pytest

from tests.conftest import VECTORS_DIR, RsaKeys
from webapp.alixpay import signing
from webapp.alixpay.crypto import Signer, Verifier

VECTORS = json.loads((VECTORS_DIR / "vectors.json").read_text())
SECRET = VECTORS["secretKey"]
BY_NAME = {vector["name"]: vector for vector in VECTORS["vectors"]}
PRIVATE_KEYS = {
    "partner_private.pem": ["partner_private.pem", "partner_private_pkcs1.pem"],
    "alix_private.pem": ["alix_private.pem"],
}


def signing_cases() -> list[tuple[str, str]]:
    return [(vector["name"], key) for vector in VECTORS["vectors"] for key in PRIVATE_KEYS[vector["signed_with"]]]


@pytest.mark.parametrize(("name", "key_file"), signing_cases())
def test_signer_reproduces_every_vector_byte_for_byte(name: str, key_file: str) -> None:
    vector = BY_NAME[name]
    assert Signer.from_file(VECTORS_DIR / key_file).sign(vector["string"]) == vector["signature"]


@pytest.mark.parametrize("name", list(BY_NAME))
def test_verifier_accepts_every_vector(name: str) -> None:
    vector = BY_NAME[name]
    assert Verifier.from_files([VECTORS_DIR / vector["verify_with"]]).verify(vector["string"], vector["signature"])


@pytest.mark.parametrize("negative", VECTORS["negative"], ids=lambda negative: negative["name"])
def test_verifier_refuses_the_negative_vectors(negative: dict[str, str]) -> None:
    verifier = Verifier.from_files([VECTORS_DIR / negative["verify_with"]])
    assert not verifier.verify(negative["string"], negative["signature"])


def test_verifier_accepts_either_key_during_rotation(rsa_keys: RsaKeys) -> None:
    text = BY_NAME["ipn_success"]["string"]
    old, new = Signer.from_file(VECTORS_DIR / "alix_private.pem"), Signer.from_file(rsa_keys.alix.private)
    both = Verifier.from_files([VECTORS_DIR / "alix_public.pem", rsa_keys.alix.public])
    assert both.verify(text, old.sign(text)) and both.verify(text, new.sign(text))
    assert not Verifier.from_files([rsa_keys.alix.public]).verify(text, old.sign(text))


@pytest.mark.parametrize("garbage", ["", "not base64!!", "AAAA", None])
def test_verifier_refuses_garbage_signatures(garbage: str | None) -> None:
    assert not Verifier.from_files([VECTORS_DIR / "alix_public.pem"]).verify("x", garbage)


def test_create_cashout_layout_matches_the_seed_vector() -> None:
    text = signing.create_cashout_string(
        partner_code="kaiAlinex",
        external_order_id="f1a2acc8-c865-44fe-8e6d-d0857ada4d37",
        crypto_currency="USDT",
        fiat_amount=10000,
        bank_code="TECHCOMBANK",
        account_number="888812345678",
        transfer_content="transfer",
        user_email="dummy@abc.com",
        secret_key=SECRET,
    )
    assert text == BY_NAME["create_cashout_seed_example"]["string"]


def test_details_layout_matches_the_vector() -> None:
    text = signing.details_string(
        partner_code="kaiAlinex", external_order_id="f1a2acc8-c865-44fe-8e6d-d0857ada4d37", secret_key=SECRET
    )
    assert text == BY_NAME["order_details"]["string"]


@pytest.mark.parametrize(
    "status", ["AWAITING_PAYMENT", "PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS", "FAIL", "ERROR"]
)
def test_order_layout_matches_the_ipn_vectors(status: str) -> None:
    text = signing.order_string(
        external_order_id="f1a2acc8-c865-44fe-8e6d-d0857ada4d37",
        order_type="CASH_OUT",
        fiat_amount=Decimal("10000.00"),
        status=status,
        secret_key=SECRET,
    )
    assert text == BY_NAME[f"ipn_{status.lower()}"]["string"]


@pytest.mark.parametrize(
    ("value", "text"), [(10000, "10000"), ("2500000", "2500000"), (10000.0, "10000"), (Decimal("5E+4"), "50000")]
)
def test_amount_is_signed_as_a_plain_integer(value: object, text: str) -> None:
    assert signing.amount_text(value) == text


@pytest.mark.parametrize("value", [10000.5, "12,000", "abc"])
def test_amount_with_decimals_or_separators_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        signing.amount_text(value)


def test_key_objects_never_show_in_repr(rsa_keys: RsaKeys) -> None:
    signer = Signer.from_file(rsa_keys.partner.private)
    pem_body = rsa_keys.partner.private.read_text().splitlines()[1]
    assert pem_body not in repr(signer)
    assert "RSAPrivateKey" not in repr(signer)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)


def test_key_load_errors_name_the_file_never_its_content(tmp_path, rsa_keys: RsaKeys) -> None:
    from webapp.alixpay.keys import KeyLoadError, load_private_key, load_public_key

    pem = rsa_keys.partner.private.read_text()
    broken = tmp_path / "broken.pem"
    broken.write_text(pem.replace("A", "!", 3))  # still looks like a key, but is not one
    secret_lines = [line for line in pem.splitlines() if "-----" not in line]
    for load, path in ((load_private_key, broken), (load_public_key, rsa_keys.partner.private)):
        with pytest.raises(KeyLoadError) as caught:
            load(path)
        text = f"{caught.value} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
        assert str(path) in text
        assert not any(line in text for line in secret_lines)
