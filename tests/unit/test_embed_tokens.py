"""Launch tokens: what a partner signs is accepted once checked, and each way a token can be wrong is refused."""

import base64
import hashlib
import hmac
import json
import time
import warnings

import pytest
from joserfc.jwk import OctKey, OKPKey, RSAKey

from tests.embed_tokens import HS_SECRET, claims, mint
from webapp.embed.tokens import LaunchRefused, verification_key, verify_launch_token

AUDIENCE = "http://testserver.local"
RETURN_URLS = ["https://wallet.acme.example/back"]


@pytest.fixture(scope="module")
def rsa() -> RSAKey:
    return RSAKey.generate_key(2048)


@pytest.fixture(scope="module")
def ed() -> OKPKey:
    return OKPKey.generate_key("Ed25519")


def verify(token: str, alg: str = "HS256", material: str = HS_SECRET) -> object:
    key = verification_key(alg, material)
    return verify_launch_token(
        token, slug="acme", keys=[(alg, key)], audience=AUDIENCE, return_urls=RETURN_URLS, now=time.time()
    )


def test_each_registered_algorithm_is_accepted(rsa: RSAKey, ed: OKPKey) -> None:
    hs = verify(mint(OctKey.import_key(HS_SECRET), amount=250_000, locale="vi", return_url=RETURN_URLS[0]))
    assert (hs.partner, hs.subject, hs.email, hs.amount, hs.locale) == (
        "acme",
        "wallet-user-7",
        "wallet.user@example.com",
        250_000,
        "vi",
    )
    assert hs.return_url == RETURN_URLS[0]
    assert verify(mint(OctKey.import_key(HS_SECRET), aud=["https://other.example", AUDIENCE])).subject
    assert verify(mint(rsa, "RS256"), "RS256", rsa.as_pem(private=False).decode()).subject == "wallet-user-7"
    with warnings.catch_warnings():  # partners' libraries still write EdDSA, which RFC 9864 deprecates
        warnings.simplefilter("ignore")
        eddsa = mint(ed, "EdDSA")
    assert verify(eddsa, "EdDSA", ed.as_pem(private=False).decode()).email == "wallet.user@example.com"
    assert verify(mint(ed, "Ed25519"), "EdDSA", ed.as_pem(private=False).decode()).jti


HS = OctKey.import_key(HS_SECRET)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: "not-a-token", "malformed"),
        (lambda: mint(HS) + "x", "bad_signature"),
        (lambda: mint(OctKey.import_key("another-secret-of-at-least-32-bytes!")), "bad_signature"),
        (lambda: mint(HS, iss="someone-else"), "wrong_issuer"),
        (lambda: mint(HS, aud="https://other.example"), "wrong_audience"),
        (lambda: mint(HS, aud=None), "wrong_audience"),
        (lambda: mint(HS, exp=int(time.time()) - 120), "expired"),
        (lambda: mint(HS, exp=int(time.time()) + 3600), "too_long_lived"),
        (lambda: mint(HS, exp=None), "missing_claim"),
        (lambda: mint(HS, iat=int(time.time()) + 600), "not_yet_valid"),
        (lambda: mint(HS, nbf=int(time.time()) + 600), "not_yet_valid"),
        (lambda: mint(HS, nbf="soon"), "malformed"),
        (lambda: mint(HS, exp="later"), "malformed"),
        (lambda: mint(HS, iss=None), "wrong_issuer"),
        (lambda: mint(HS, aud=["https://other.example"]), "wrong_audience"),
        (lambda: mint(HS, sub="   "), "missing_claim"),
        (lambda: mint(HS, sub=7), "missing_claim"),
        (lambda: mint(HS, email_verified=1), "email_unverified"),
        (lambda: mint(HS, sub=None), "missing_claim"),
        (lambda: mint(HS, jti=None), "missing_claim"),
        (lambda: mint(HS, email=None), "missing_claim"),
        (lambda: mint(HS, email="not an email"), "malformed"),
        (lambda: mint(HS, email_verified=False), "email_unverified"),
        (lambda: mint(HS, email_verified="true"), "email_unverified"),
        (lambda: mint(HS, email_verified=None), "email_unverified"),
        (lambda: mint(HS, return_url="https://evil.example/back"), "return_url_not_allowed"),
        (lambda: mint(HS, amount=-5), "malformed"),
        (lambda: mint(HS, amount="100000"), "malformed"),
        (lambda: "x" * 9000, "malformed"),
    ],
)
def test_a_wrong_token_is_refused_with_its_reason(token, reason: str) -> None:
    with pytest.raises(LaunchRefused) as refused:
        verify(token())
    assert refused.value.reason == reason


def test_only_the_partners_registered_algorithm_is_accepted(rsa: RSAKey) -> None:
    public_pem = rsa.as_pem(private=False).decode()
    # An attacker who knows the public key must not pass it off as an HMAC secret (algorithm confusion) …
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    mac = hmac.new(public_pem.encode(), header + b"." + payload, hashlib.sha256).digest()
    forged = b".".join([header, payload, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    with pytest.raises(LaunchRefused) as confused:
        verify(forged, "RS256", public_pem)
    assert confused.value.reason == "malformed"
    # … nor send an unsigned token.
    unsigned = "eyJhbGciOiJub25lIn0." + mint(rsa, "RS256").split(".")[1] + "."
    with pytest.raises(LaunchRefused):
        verify(unsigned, "RS256", public_pem)


def test_registering_a_weak_or_private_key_is_refused(rsa: RSAKey) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        verification_key("HS256", "short")
    with pytest.raises(ValueError, match="public key"):
        verification_key("RS256", rsa.as_pem(private=True).decode())
    with pytest.raises(ValueError, match="unsupported"):
        verification_key("none", "x")


def test_during_a_rotation_tokens_signed_with_either_key_are_accepted_and_others_refused(rsa: RSAKey) -> None:
    """The partner's previous key (another algorithm, even) still counts beside the new one while its grace lasts."""
    new_secret = "launch_" + "n" * 40
    keys = [
        ("HS256", verification_key("HS256", new_secret)),
        ("RS256", verification_key("RS256", rsa.as_pem(private=False).decode())),
    ]

    def verify_with_both(token: str) -> object:
        return verify_launch_token(
            token, slug="acme", keys=keys, audience=AUDIENCE, return_urls=RETURN_URLS, now=time.time()
        )

    assert verify_with_both(mint(OctKey.import_key(new_secret))).subject == "wallet-user-7"  # type: ignore[attr-defined]
    assert verify_with_both(mint(rsa, "RS256")).subject == "wallet-user-7"  # type: ignore[attr-defined]
    with pytest.raises(LaunchRefused) as refused:
        verify_with_both(mint(OctKey.import_key(HS_SECRET)))  # the right algorithm, a key never registered
    assert refused.value.reason == "bad_signature"
    with pytest.raises(LaunchRefused) as refused:
        verify_with_both(mint(OKPKey.generate_key("Ed25519"), "Ed25519"))  # an algorithm neither key is for
    assert refused.value.reason == "malformed"


def test_a_reference_is_given_back_and_one_that_would_not_survive_a_log_line_or_url_is_refused() -> None:
    key = OctKey.import_key(HS_SECRET)
    assert verify(mint(key, reference="wd-2026/12#7")).reference == "wd-2026/12#7"  # type: ignore[attr-defined]
    assert verify(mint(key)).reference is None  # type: ignore[attr-defined]
    for bad in ("", "x" * 65, "two words", "line\nbreak", 42, ["wd-1"]):
        with pytest.raises(LaunchRefused) as refused:
            verify(mint(key, reference=bad))
        assert refused.value.reason == "malformed", bad
