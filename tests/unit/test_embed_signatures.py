"""What we sign for partners verifies with the recipe docs/embedding.md gives (the example partner's copy)."""

import time
from urllib.parse import parse_qs, urlsplit

from tests.embed_tokens import example_partner
from webapp.embed.signatures import signed_return_url, webhook_signature

SECRET = "whsec_test_secret"


def test_a_webhook_signature_verifies_with_the_documented_recipe() -> None:
    body = b'{"v":1,"id":"evt_1","type":"order.completed"}'
    now = int(time.time())
    header = webhook_signature(SECRET, body, now)
    recipe = example_partner().verify_signature
    assert recipe(SECRET, body, header, now)
    assert not recipe("whsec_other", body, header, now)  # another secret
    assert not recipe(SECRET, body.replace(b"completed", b"failed"), header, now)  # a tampered body
    assert not recipe(SECRET, body, header, now + 3600)  # replayed an hour later
    assert not recipe(SECRET, body, header.replace("v1=", "v0="), now)


def test_return_url_parameters_are_signed_and_keep_the_partners_query() -> None:
    url = signed_return_url(
        SECRET, "https://wallet.example/back?from=cashout", order_id="o-1", status="SUCCESS", timestamp=1
    )
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == "/back"
    assert query["from"] == "cashout"
    assert (query["order_id"], query["status"], query["t"]) == ("o-1", "SUCCESS", "1")
    assert len(query["sig"]) == 64
    forged = signed_return_url(
        "whsec_other", "https://wallet.example/back", order_id="o-1", status="SUCCESS", timestamp=1
    )
    assert parse_qs(urlsplit(forged).query)["sig"][0] != query["sig"]
