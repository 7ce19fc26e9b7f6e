"""The sandbox's order engine and IPN delivery, observed by a real receiver on loopback."""

import time
from pathlib import Path

import pytest

from tests.conftest import RsaKeys
from tests.integration.conftest import make_client, sandbox_env
from tests.integration.test_alixpay_sandbox import new_order
from tests.processes import IpnReceiver, SandboxServer, running_sandbox, wait_for
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.schemas import OrderObject

HAPPY = ["AWAITING_PAYMENT", "PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS"]


def statuses(ipns: list) -> list[str]:
    return [ipn.json["status"] for ipn in ipns]


def received(receiver: IpnReceiver, order_id: str, count: int, timeout: float = 20) -> list:
    return wait_for(
        lambda: (ipns := receiver.for_order(order_id)) and len(ipns) >= count and ipns,
        timeout=timeout,
        what=f"{count} IPNs for {order_id}",
    )


async def test_order_walks_every_status_with_a_signed_ipn_each(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    order = new_order()
    await alix_client.create_cashout(order)
    ipns = received(ipn_receiver, order.external_order_id, 4)
    assert statuses(ipns) == HAPPY
    assert all(alix_client.verify_ipn(OrderObject.model_validate(ipn.json)) for ipn in ipns)
    assert ipns[-1].json["tokenTransfer"]["txHash"]
    report = sandbox.order(order.external_order_id)
    assert [event["status"] for event in report["history"]] == HAPPY
    assert all(d["state"] == "delivered" and len(d["attempts"]) == 1 for d in report["deliveries"])


async def test_failed_delivery_is_retried_with_backoff_and_stops_on_2xx(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    order = new_order()
    ipn_receiver.script(order.external_order_id, [500, 503])
    await alix_client.create_cashout(order)
    sandbox.wait_for_status(order.external_order_id, "SUCCESS")
    first = wait_for(
        lambda: (d := sandbox.order(order.external_order_id)["deliveries"][0])["state"] == "delivered" and d,
        what="the first delivery to succeed",
    )
    assert [a["httpStatus"] for a in first["attempts"]] == [500, 503, 200]
    assert all(a["latencyMs"] >= 0 for a in first["attempts"])
    arrivals = [
        ipn.at for ipn in ipn_receiver.for_order(order.external_order_id) if ipn.json["status"] == "AWAITING_PAYMENT"
    ]
    assert len(arrivals) == 3
    # the wait doubles: at least 0.2 s, then at least 0.4 s (lower bounds only: the machine may be slower)
    assert arrivals[1] - arrivals[0] >= 0.2
    assert arrivals[2] - arrivals[1] >= 0.4
    time.sleep(0.6)
    assert (
        len([i for i in ipn_receiver.for_order(order.external_order_id) if i.json["status"] == "AWAITING_PAYMENT"]) == 3
    )


async def test_delivery_gives_up_after_the_last_attempt(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    order = new_order(account_number="1234560000")  # FAIL straight away: one status after creation
    ipn_receiver.script(order.external_order_id, [500] * 20)
    await alix_client.create_cashout(order)
    report = wait_for(
        lambda: (
            (r := sandbox.order(order.external_order_id))
            and all(d["state"] == "failed" for d in r["deliveries"])
            and len(r["deliveries"]) == 2
            and r
        ),
        what="both deliveries to be given up",
    )
    assert all(len(d["attempts"]) == 4 for d in report["deliveries"])


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"account_number": "9704000000"}, ["AWAITING_PAYMENT", "FAIL"]),
        ({"fiat_amount": 66_666}, ["AWAITING_PAYMENT", "ERROR"]),
        ({"recipient_name": "EXPIRE ME"}, ["AWAITING_PAYMENT", "FAIL"]),
    ],
)
async def test_magic_inputs_choose_the_outcome(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver, overrides: dict, path: list[str]
) -> None:
    order = new_order(**overrides)
    await alix_client.create_cashout(order)
    assert statuses(received(ipn_receiver, order.external_order_id, len(path))) == path
    final = await alix_client.get_order(order.external_order_id)
    assert final.status == path[-1]


async def test_expiring_order_waits_until_expires_at(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    order = new_order(recipient_name="EXPIRE ME")
    created = await alix_client.create_cashout(order)
    time.sleep(0.8)  # longer than a normal step (0.3 s), shorter than the expiry (1.5 s)
    assert (await alix_client.get_order(order.external_order_id)).status == "AWAITING_PAYMENT"
    sandbox.wait_for_status(order.external_order_id, "FAIL")
    failed = await alix_client.get_order(order.external_order_id)
    assert failed.description == "Expired before payment"
    assert created.expires_at is not None


async def test_duplicate_fault_delivers_each_ipn_n_times(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    sandbox.set_faults(duplicate=3)
    order = new_order()
    await alix_client.create_cashout(order)
    ipns = received(ipn_receiver, order.external_order_id, 12)
    assert sorted(statuses(ipns)) == sorted(HAPPY * 3)
    assert len({ipn.body for ipn in ipns}) == 4


async def test_out_of_order_fault_delivers_newest_first(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    sandbox.set_faults(out_of_order=True)
    order = new_order()
    await alix_client.create_cashout(order)
    assert statuses(received(ipn_receiver, order.external_order_id, 4)) == list(reversed(HAPPY))


@pytest.mark.parametrize("fault", ["corrupt_signature", "wrong_key"])
async def test_signature_faults_make_every_ipn_unverifiable(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver, fault: str
) -> None:
    order = new_order()
    await alix_client.create_cashout(order)  # created with good signatures...
    sandbox.admin("PUT", f"/admin/orders/{order.external_order_id}/faults", json={fault: True})  # ...then broken
    sandbox.wait_for_status(order.external_order_id, "SUCCESS")
    ipns = received(ipn_receiver, order.external_order_id, 4)
    later = [ipn for ipn in ipns if ipn.json["status"] != "AWAITING_PAYMENT"]
    assert later
    assert not any(alix_client.verify_ipn(OrderObject.model_validate(ipn.json)) for ipn in later)


async def test_delay_fault_holds_each_delivery(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    sandbox.set_faults(delay_seconds=1.0)
    order = new_order()
    started = time.monotonic()
    await alix_client.create_cashout(order)
    first = received(ipn_receiver, order.external_order_id, 1)[0]
    assert first.at - started >= 1.0


async def test_drop_fault_delivers_nothing_but_details_knows(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    sandbox.set_faults(drop=True)
    order = new_order()
    await alix_client.create_cashout(order)
    sandbox.wait_for_status(order.external_order_id, "SUCCESS")
    time.sleep(0.3)
    assert ipn_receiver.for_order(order.external_order_id) == []
    assert (await alix_client.get_order(order.external_order_id)).status == "SUCCESS"
    assert {d["state"] for d in sandbox.order(order.external_order_id)["deliveries"]} == {"dropped"}


async def test_admin_can_advance_fail_and_replay(
    alix_client: AlixPayClient, sandbox: SandboxServer, ipn_receiver: IpnReceiver
) -> None:
    order = new_order(recipient_name="EXPIRE ME")  # would otherwise wait for its expiry
    await alix_client.create_cashout(order)
    advanced = sandbox.admin("POST", f"/admin/orders/{order.external_order_id}/advance")
    assert advanced["status"] == "FAIL"
    other = new_order(recipient_name="EXPIRE ME")
    await alix_client.create_cashout(other)
    assert sandbox.admin("POST", f"/admin/orders/{other.external_order_id}/fail")["status"] == "FAIL"
    before = len(received(ipn_receiver, other.external_order_id, 2))
    sandbox.admin("POST", f"/admin/orders/{other.external_order_id}/replay")
    assert statuses(received(ipn_receiver, other.external_order_id, before + 1))[-1] == "FAIL"


def test_faults_can_be_set_from_the_page(sandbox: SandboxServer) -> None:
    import httpx

    form = {"drop": "on", "duplicate": "2", "create_response": "hang", "hang_seconds": "3", "delay_seconds": "0"}
    answer = httpx.post(f"{sandbox.url}/admin/faults", data=form)
    assert answer.status_code == 303
    faults = sandbox.admin("GET", "/admin/faults")
    assert (faults["drop"], faults["duplicate"], faults["create_response"], faults["out_of_order"]) == (
        True,
        2,
        "hang",
        False,
    )
    assert httpx.post(f"{sandbox.url}/admin/faults", data={"duplicate": "99"}).status_code == 400


def test_sandbox_page_lists_orders_with_history_and_attempts(sandbox: SandboxServer) -> None:
    import httpx

    page = httpx.get(sandbox.url + "/")
    assert page.status_code == 200
    assert "Status history" in page.text and "IPN deliveries" in page.text
    assert "Advance" in page.text and "Replay IPN" in page.text


def test_private_keys_never_reach_logs_or_bodies(sandbox: SandboxServer, rsa_keys: RsaKeys, caplog) -> None:
    import httpx

    secrets_to_hide = []
    for path in (rsa_keys.partner.private, rsa_keys.alix.private):
        secrets_to_hide += [line for line in path.read_text().splitlines() if "-----" not in line]
    texts = [sandbox.log_file.read_text(), caplog.text, httpx.get(sandbox.url + "/admin/orders").text]
    texts.append(httpx.get(sandbox.url + "/").text)
    for text in texts:
        assert not any(line in text for line in secrets_to_hide)
    assert "IPN delivery" in texts[0]  # the log is real and was read


async def test_orders_and_deliveries_survive_a_sandbox_restart(rsa_keys: RsaKeys, tmp_path: Path) -> None:
    """A second sandbox on its own file: stop it mid-order, start it again, and the order carries on."""
    env = sandbox_env(rsa_keys, tmp_path, "http://127.0.0.1:9/unreachable", SPEED="1")
    order = new_order()
    with running_sandbox(env, tmp_path / "first.log") as first:
        client = make_client(first, rsa_keys)
        await client.create_cashout(order)
        await client.aclose()
    with running_sandbox(env, tmp_path / "second.log") as second:
        report = second.wait_for_status(order.external_order_id, "SUCCESS")
        assert [e["status"] for e in report["history"]] == HAPPY
        assert report["deliveries"][0]["attempts"]  # the unreachable receiver's attempts were kept and go on
