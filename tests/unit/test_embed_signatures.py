"""What we sign for partners verifies with the recipe docs/embedding.md gives (the example partner's copy)."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.embed_tokens import example_partner
from webapp.embed.signatures import signed_return_url, webhook_signature

SECRET, NEW_SECRET = "whsec_test_secret", "whsec_new_secret"
BODY = b'{"v":1,"id":"evt_1","type":"order.completed"}'


def test_a_webhook_signature_verifies_with_the_documented_recipe() -> None:
    now = int(time.time())
    header = webhook_signature([SECRET], BODY, now)
    recipe = example_partner().verify_signature
    assert recipe(SECRET, BODY, header, now)
    assert not recipe("whsec_other", BODY, header, now)  # another secret
    assert not recipe(SECRET, BODY.replace(b"completed", b"failed"), header, now)  # a tampered body
    assert not recipe(SECRET, BODY, header, now + 3600)  # replayed an hour later
    assert not recipe(SECRET, BODY, header.replace("v1=", "v0="), now)


def test_during_a_rotation_a_webhook_carries_a_signature_for_each_secret_and_either_receiver_accepts_it() -> None:
    now = int(time.time())
    header = webhook_signature([NEW_SECRET, SECRET], BODY, now)
    assert header.count("v1=") == 2
    recipe = example_partner().verify_signature
    assert recipe(SECRET, BODY, header, now) and recipe(NEW_SECRET, BODY, header, now)
    assert not recipe("whsec_other", BODY, header, now)


def test_a_secret_given_as_one_string_is_refused_not_signed_character_by_character() -> None:
    with pytest.raises(TypeError):
        webhook_signature(SECRET, BODY, 1)
    with pytest.raises(TypeError):
        signed_return_url(SECRET, "https://wallet.example/back", order_id="o-1", status="SUCCESS", timestamp=1)


def test_return_url_parameters_are_signed_and_keep_the_partners_query() -> None:
    url = signed_return_url(
        [SECRET], "https://wallet.example/back?from=cashout", order_id="o-1", status="SUCCESS", timestamp=1
    )
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == "/back"
    assert query["from"] == "cashout"
    assert (query["order_id"], query["status"], query["t"]) == ("o-1", "SUCCESS", "1")
    assert len(query["sig"]) == 64
    forged = signed_return_url(
        ["whsec_other"], "https://wallet.example/back", order_id="o-1", status="SUCCESS", timestamp=1
    )
    assert parse_qs(urlsplit(forged).query)["sig"][0] != query["sig"]


def test_during_a_rotation_a_return_link_verifies_with_either_secret_by_the_documented_recipe() -> None:
    now = int(time.time())
    url = signed_return_url(
        [NEW_SECRET, SECRET], "https://wallet.example/back", order_id="o-1", status="SUCCESS", timestamp=now
    )
    query = parse_qs(urlsplit(url).query)
    assert len(query["sig"]) == 2
    recipe = example_partner().verify_return
    for secret in (SECRET, NEW_SECRET):
        assert recipe(secret, "o-1", "SUCCESS", str(now), query["sig"], now)
    assert not recipe("whsec_other", "o-1", "SUCCESS", str(now), query["sig"], now)
    assert not recipe(SECRET, "o-1", "FAIL", str(now), query["sig"], now)  # a changed status
    assert not recipe(SECRET, "o-1", "SUCCESS", str(now), query["sig"], now + 3600)  # an old link
