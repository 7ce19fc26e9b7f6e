"""The embedded stack behind `python -m webapp dev`: every process on loopback, listed in `stack.json`.

Each service is a child process; Ctrl-C (or SIGTERM) stops all of them.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from webapp.alixpay.keys import generate_key_pair
from webapp.config import DEV_ACCOUNTS, AlixPaySettings, Settings
from webapp.db import command_sessionmaker
from webapp.embed.partners import PartnerSecrets, PartnerSpec, new_secret, save_partner
from webapp.partner_api.keys import make_key, partner_of_key

LOOPBACK = "127.0.0.1"
EXAMPLE_PARTNER_SLUG = "example"
EXAMPLE_PARTNER_APP = Path(__file__).resolve().parents[2] / "examples" / "partner" / "app.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    args: list[str]
    url: str
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    port: int = 0
    """The port it listens on, chosen with the command-line option `flag` (`dev --app-port`)."""
    flag: str = ""


def port_taken(service: Service) -> str | None:
    """Why the service cannot listen on its port, naming who holds it and the option to change; None if free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, service.port))
        except OSError:
            pass
        else:
            return None
    holder = next(
        (
            connection.pid
            for connection in psutil.net_connections(kind="tcp")
            if connection.laddr and connection.laddr.port == service.port and connection.status == psutil.CONN_LISTEN
        ),
        None,
    )
    who = "another process"
    if holder is not None:
        with contextlib.suppress(psutil.Error):
            who = f"{' '.join(psutil.Process(holder).cmdline()) or psutil.Process(holder).name()} (pid {holder})"
    return (
        f"{service.name}: port {service.port} is taken by {who}. Stop it, or start with"
        f" {service.flag} <another port> ({service.flag} 0 picks a free one)."
    )


def wait_until_ready(service: Service, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {process.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.ready_url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} was not ready at {service.ready_url} after {timeout:.0f} s")


@dataclass
class Stack:
    entries: dict[str, dict[str, str]]
    processes: list[subprocess.Popen[bytes]]

    def exited(self) -> list[str]:
        return [name for name, process in zip(self.entries, self.processes, strict=True) if process.poll() is not None]


@contextlib.contextmanager
def running(services: list[Service], stack_file: Path) -> Iterator[Stack]:
    """Start every service, wait for each, write `stack_file`; stop them all on the way out."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for service in services:
            env = {**os.environ, **service.env}
            processes.append(subprocess.Popen(service.args, env=env))  # noqa: S603 (our own interpreter and args)
            wait_until_ready(service, processes[-1])
        entries = {service.name: {"url": service.url, **service.details} for service in services}
        stack_file.parent.mkdir(parents=True, exist_ok=True)
        stack_file.write_text(json.dumps(entries, indent=2) + "\n")
        yield Stack(entries, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        stack_file.unlink(missing_ok=True)


def serve_forever(services: list[Service], stack_file: Path) -> int:
    """Run until Ctrl-C, SIGTERM, or one service dying (which stops the others and returns 1).

    A port already taken is said before anything starts (returns 1): who holds it, and the option to change.
    """
    if taken := [reason for service in services if service.port and (reason := port_taken(service))]:
        for reason in taken:
            print(reason, file=sys.stderr)  # noqa: T201
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with running(services, stack_file) as stack:
        print(f"The embedded stack is running ({stack_file}):")  # noqa: T201
        for name, entry in stack.entries.items():
            print(f"  {name:8} {entry['url']}")  # noqa: T201
        print(f"Open {stack.entries['app']['url']} in your browser. Press Ctrl-C to stop.")  # noqa: T201
        with contextlib.suppress(KeyboardInterrupt):
            while not stack.exited():
                time.sleep(1)
            print(f"stopping: {', '.join(stack.exited())} exited", file=sys.stderr)  # noqa: T201
            return 1
    return 0


@dataclass(frozen=True)
class DevKeys:
    partner_private: Path
    partner_public: Path
    alix_private: Path
    alix_public: Path


def ensure_dev_keys(state_dir: Path) -> DevKeys:
    """Development key pairs, made on first use; never the shared test keys."""
    names = ("partner_private", "partner_public", "alix_private", "alix_public")
    keys = DevKeys(*(state_dir / f"{name}.pem" for name in names))
    for private, public in ((keys.partner_private, keys.partner_public), (keys.alix_private, keys.alix_public)):
        if not (private.exists() and public.exists()):
            generate_key_pair(private, public)
    return keys


def idp_service(port: int) -> Service:
    """oidc-provider-mock with the seeded development accounts (one click each on its sign-in page)."""
    url = f"http://{LOOPBACK}:{port}"
    args = [sys.executable, "-m", "oidc_provider_mock", "--host", LOOPBACK, "--port", str(port)]
    for email in DEV_ACCOUNTS:
        args += ["--user-claims", json.dumps({"sub": email, "email": email, "email_verified": True})]
    return Service(
        name="idp",
        args=args,
        url=url,
        ready_url=f"{url}/.well-known/openid-configuration",
        details={"accounts": ", ".join(DEV_ACCOUNTS)},
        port=port,
        flag="--idp-port",
    )


def stack_database_url(state_dir: Path) -> str:
    """`DATABASE_URL` when it is set, else a SQLite file in the state directory (two stacks never share one)."""
    return os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{state_dir / 'app.db'}"


def mailbox_service(state_dir: Path, *, http_port: int) -> Service:
    """The development SMTP sink, whose page lists every mail the app sent."""
    url = f"http://{LOOPBACK}:{http_port}"
    smtp_port = free_port()
    return Service(
        name="mailbox",
        args=[sys.executable, "-m", "webapp", "mailbox"],
        url=url,
        ready_url=f"{url}/healthz",
        env={
            "MAILBOX_HOST": LOOPBACK,
            "MAILBOX_SMTP_PORT": str(smtp_port),
            "MAILBOX_HTTP_PORT": str(http_port),
            "MAILBOX_DIRECTORY": str(state_dir / "mailbox"),
        },
        details={"smtp_url": f"smtp://{LOOPBACK}:{smtp_port}"},
        port=http_port,
        flag="--mailbox-port",
    )


def embedded_services(
    state_dir: Path,
    *,
    app_port: int,
    sandbox_port: int,
    idp_port: int,
    partner_port: int,
    mailbox_port: int,
    database_url: str,
) -> list[Service]:
    """The app, the Alix Pay sandbox, the local IdP, the mailbox and the example partner, with development secrets."""
    keys = ensure_dev_keys(state_dir)
    app_url = f"http://{LOOPBACK}:{app_port}"
    sandbox_url = f"http://{LOOPBACK}:{sandbox_port}"
    alixpay = AlixPaySettings()
    partner_code, secret_key = alixpay.partner_code, alixpay.secret_key.get_secret_value()
    python = sys.executable
    mailbox = mailbox_service(state_dir, http_port=mailbox_port)
    sandbox = Service(
        name="sandbox",
        args=[python, "-m", "webapp", "sandbox"],
        url=sandbox_url,
        ready_url=f"{sandbox_url}/healthz",
        env={
            "SANDBOX_HOST": LOOPBACK,
            "SANDBOX_PORT": str(sandbox_port),
            "SANDBOX_PARTNER_CODE": partner_code,
            "SANDBOX_SECRET_KEY": secret_key,
            "SANDBOX_PARTNER_PUBLIC_KEY_FILE": str(keys.partner_public),
            "SANDBOX_PRIVATE_KEY_FILE": str(keys.alix_private),
            "SANDBOX_IPN_URL": f"{app_url}/ipn/alixpay",
            "SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{state_dir / 'sandbox.db'}",
        },
        details={
            "partner_code": partner_code,
            "secret_key": secret_key,
            "partner_private_key_file": str(keys.partner_private),
            "partner_public_key_file": str(keys.partner_public),
            "alix_private_key_file": str(keys.alix_private),
            "alix_public_key_file": str(keys.alix_public),
        },
        port=sandbox_port,
        flag="--sandbox-port",
    )
    app = Service(
        name="app",
        args=[python, "-m", "webapp", "serve", "--host", LOOPBACK, "--port", str(app_port)],
        url=app_url,
        ready_url=f"{app_url}/healthz",
        env={
            "ENVIRONMENT": "development",
            "PUBLIC_BASE_URL": app_url,
            "DATABASE_URL": database_url,
            "SMTP_URL": mailbox.details["smtp_url"],
            "SUPPORT_CONTACT_EMAIL": "support@example.com",
            "ALIXPAY_BASE_URL": sandbox_url,
            "ALIXPAY_PARTNER_CODE": partner_code,
            "ALIXPAY_PRIVATE_KEY_FILE": str(keys.partner_private),
            "ALIXPAY_PUBLIC_KEY_FILES": str(keys.alix_public),
            "OIDC_DISCOVERY_URL": f"http://{LOOPBACK}:{idp_port}/.well-known/openid-configuration",
            "SUPPORT_EMAILS": ",".join(email for email, role in DEV_ACCOUNTS.items() if role == "support"),
            "ADMIN_EMAILS": ",".join(email for email, role in DEV_ACCOUNTS.items() if role == "admin"),
            "IPN_ALLOWED_SOURCES": LOOPBACK,  # the sandbox is this stack's Alix Pay
        },
        port=app_port,
        flag="--app-port",
    )
    partner_secrets = asyncio.run(register_example_partner(database_url, state_dir, partner_port=partner_port))
    partner = partner_service(partner_secrets, partner_port=partner_port, app_port=app_port, app_url=app_url)
    return [idp_service(idp_port), mailbox, sandbox, app, partner]


def example_partner_secrets(state_dir: Path) -> dict[str, str]:
    """The example partner's launch and webhook secrets, made on first use and kept in the state directory."""
    path = state_dir / "example_partner.json"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        secrets = {"launch": new_secret("launch"), "webhook": new_secret("whsec")}
        path.write_text(json.dumps(secrets))
    return json.loads(path.read_text())


async def register_example_partner(database_url: str, state_dir: Path, *, partner_port: int) -> dict[str, str]:
    """Register `examples/partner` (served on 127.0.0.1) as partner `example`, with its secrets and an API key."""
    secrets = example_partner_secrets(state_dir)
    origin = f"http://{LOOPBACK}:{partner_port}"
    spec = PartnerSpec(
        slug=EXAMPLE_PARTNER_SLUG,
        name="Example Wallet",
        origins=[origin],
        return_urls=[f"{origin}/returned"],
        token_alg="HS256",  # noqa: S106 (an algorithm's name)
        token_key=secrets["launch"],
        webhook_url=f"{origin}/webhooks",
    )
    async with command_sessionmaker(database_url) as sessionmaker, sessionmaker() as session, session.begin():
        partner = await save_partner(session, spec, PartnerSecrets.of(Settings()), webhook_secret=secrets["webhook"])
        if not secrets.get("api_key") or await partner_of_key(session, secrets["api_key"]) is None:
            secrets["api_key"] = (await make_key(session, partner, "example server")).plain  # a new database
            (state_dir / "example_partner.json").write_text(json.dumps(secrets))
    return secrets


def partner_service(secrets: dict[str, str], *, partner_port: int, app_port: int, app_url: str) -> Service:
    """The example partner page, which embeds the app as http://localhost:<port>.

    That is another site than the partner's http://127.0.0.1 origin, as a real partner's page is.
    """
    url = f"http://{LOOPBACK}:{partner_port}"
    return Service(
        name="partner",
        args=[sys.executable, str(EXAMPLE_PARTNER_APP)],
        url=url,
        ready_url=f"{url}/healthz",
        env={
            "PARTNER_HOST": LOOPBACK,
            "PARTNER_PORT": str(partner_port),
            "PARTNER_SLUG": EXAMPLE_PARTNER_SLUG,
            "PARTNER_LAUNCH_SECRET": secrets["launch"],
            "PARTNER_WEBHOOK_SECRET": secrets["webhook"],
            "PARTNER_API_KEY": secrets["api_key"],
            "CASHOUT_APP_URL": f"http://localhost:{app_port}",
            "CASHOUT_AUDIENCE": app_url,
        },
        details={"slug": EXAMPLE_PARTNER_SLUG, "embeds": f"http://localhost:{app_port}"},
        port=partner_port,
        flag="--partner-port",
    )
