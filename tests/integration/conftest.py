"""Real peers for integration tests: the Alix Pay sandbox as a server process and an IPN receiver on loopback."""

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import RsaKeys
from tests.support import IpnReceiver, SandboxServer, running_receiver, running_sandbox
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier

PARTNER_CODE = "testpartner"
SANDBOX_SECRET = f"sk_test_{secrets.token_hex(8)}"


@pytest.fixture(scope="session")
def ipn_receiver() -> Iterator[IpnReceiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def sandbox_server(
    rsa_keys: RsaKeys, ipn_receiver: IpnReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxServer]:
    directory = tmp_path_factory.mktemp("sandbox")
    env = {
        "SANDBOX_PARTNER_CODE": PARTNER_CODE,
        "SANDBOX_SECRET_KEY": SANDBOX_SECRET,
        "SANDBOX_PARTNER_PUBLIC_KEY_FILE": str(rsa_keys.partner.public),
        "SANDBOX_PRIVATE_KEY_FILE": str(rsa_keys.alix.private),
        "SANDBOX_IPN_URL": ipn_receiver.url,
        "SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'sandbox.db'}",
        "SANDBOX_SPEED": "0.3",
        "SANDBOX_RETRY_BASE_SECONDS": "0.2",
        "SANDBOX_MAX_ATTEMPTS": "4",
        "SANDBOX_TICK_SECONDS": "0.05",
        "SANDBOX_EXPIRY_SECONDS": "1.5",
    }
    with running_sandbox(env, directory / "sandbox.log") as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The shared sandbox with no faults set."""
    sandbox_server.set_faults()
    return sandbox_server


def make_client(
    sandbox: SandboxServer, rsa_keys: RsaKeys, *, signer: Signer | None = None, **overrides: object
) -> AlixPayClient:
    options: dict[str, object] = {
        "base_url": sandbox.url,
        "partner_code": PARTNER_CODE,
        "secret_key": SANDBOX_SECRET,
        "webhook_secret_key": "whsk_test",
        "signer": signer or Signer.from_file(rsa_keys.partner.private),
        "verifier": Verifier.from_files([rsa_keys.alix.public]),
        "timeout": 5.0,
    }
    options.update(overrides)
    return AlixPayClient(**options)  # type: ignore[arg-type]


@pytest.fixture
async def alix_client(sandbox: SandboxServer, rsa_keys: RsaKeys) -> AsyncIterator[AlixPayClient]:
    client = make_client(sandbox, rsa_keys)
    yield client
    await client.aclose()
