from webapp.auth.pending import PENDING_SECONDS, pending_cookie, seal, unseal

SECRET = "a-session-secret-of-at-least-32-characters"


def test_a_sealed_sign_in_opens_with_its_secret_only_and_only_while_fresh() -> None:
    data = {"oidc": {"state": "s", "nonce": "n", "code_verifier": "v"}, "next": "/orders"}
    sealed = seal(data, SECRET, now=1000)
    assert "state" not in sealed and "/orders" not in sealed  # encrypted, not merely signed
    assert unseal(sealed, [SECRET], now=1000 + PENDING_SECONDS) == data
    assert unseal(sealed, [SECRET], now=1001 + PENDING_SECONDS) is None
    assert unseal(sealed, ["another-secret-of-at-least-32-characters"], now=1000) is None
    assert unseal(sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB"), [SECRET], now=1000) is None
    assert unseal("not base64 at all!", [SECRET]) is None
    assert unseal("", [SECRET]) is None
    assert seal(data, SECRET, now=1000) != sealed  # a fresh nonce each time


def test_during_a_rotation_a_sign_in_sealed_under_the_previous_secret_still_opens() -> None:
    new = "the-next-session-secret-of-32-characters"
    started_before = seal({"next": "/orders"}, SECRET, now=1000)
    assert unseal(started_before, [new, SECRET], now=1001) == {"next": "/orders"}
    assert unseal(started_before, [new], now=1001) is None  # once the previous secret is removed
    assert unseal(seal({"next": "/"}, new, now=1000), [new, SECRET], now=1001) == {"next": "/"}


def test_the_cookie_goes_to_the_callback_only_and_clearing_it_expires_it() -> None:
    cookie = pending_cookie("value", secure=True)
    assert (cookie.path, cookie.httponly, cookie.secure, cookie.samesite) == ("/auth/callback", True, True, "lax")
    assert cookie.max_age == PENDING_SECONDS
    assert pending_cookie("", secure=True).max_age == 0
