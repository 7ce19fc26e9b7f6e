"""docs/deploy.md's nginx example, taken verbatim, in front of two instances: headers and a rolling restart.

Debian's nginx runs the documented block as it stands; only what a reader must fill in is replaced (the two
upstream addresses, the listening port, the certificate files). `make nginx` installs it.
"""

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import RsaKeys
from tests.integration.cluster import signed_in
from tests.integration.conftest import Cluster, seed_orders
from tests.integration.ipn_bodies import ipn_body
from tests.processes import ROOT, async_wait_for, wait_for
from webapp.dev.stack import free_port

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian's, installed by `make nginx`

DOCUMENTED = re.search(r"```nginx\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S).group(1)


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cashout.example.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cashout.pem", directory / "cashout.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def documented_config(upstreams: list[str], port: int, directory: Path) -> str:
    """The docs' block with only the reader's blanks filled in, inside the few lines nginx needs to run it."""
    cert_file, key_file = self_signed(directory)
    block = DOCUMENTED
    for documented, ours in zip(("10.0.0.11:8000", "10.0.0.12:8000"), upstreams, strict=True):
        assert documented in block
        block = block.replace(documented, ours)
    for documented, ours in (
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("/etc/ssl/cashout.pem", str(cert_file)),
        ("/etc/ssl/cashout.key", str(key_file)),
    ):
        assert documented in block
        block = block.replace(documented, ours)
    return (
        f"daemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\nhttp {{\n"
        f"access_log off;\nclient_body_temp_path {directory}/body;\nproxy_temp_path {directory}/proxy;\n"
        f"{block}}}\n"
    )


@contextlib.contextmanager
def nginx_in_front(upstreams: list[str], directory: Path) -> Iterator[str]:
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(documented_config(upstreams, port, directory))
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(config), "-e", str(directory / "error.log")], capture_output=True
    )
    assert checked.returncode == 0, checked.stderr.decode()
    process = subprocess.Popen(["nginx", "-c", str(config), "-e", str(directory / "error.log")])
    url = f"https://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/healthz", verify=False, timeout=1).status_code == 200
            return False

        wait_for(answering, timeout=10, what="nginx to start")
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)


@contextlib.contextmanager
def two_instances_behind_nginx(cluster: Cluster, directory: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """The proxy's URL, then instance A's URL and process (B runs beside it)."""
    with cluster.instance("a") as (url_a, process_a), cluster.instance("b") as (url_b, _):
        upstreams = [url.removeprefix("http://") for url in (url_a, url_b)]
        with nginx_in_front(upstreams, directory) as proxy:
            yield proxy, url_a, process_a


async def test_every_route_through_the_documented_proxy_gets_the_proxys_request_id_and_headers(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The stream route is a location of its own: it must set every proxy header again (they are not inherited)."""
    cluster.env["TRUST_REQUEST_ID_HEADER"] = "true"
    with two_instances_behind_nginx(cluster, tmp_path) as (proxy, url_a, _):
        person = await signed_in(url_a, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        chosen = {"x-request-id": "chosen-by-the-client"}
        async with httpx.AsyncClient(base_url=proxy, cookies=person.cookies, verify=False, timeout=20) as viewer:
            page = await viewer.get(f"/orders/{order_id}", headers=chosen)
            async with viewer.stream("GET", f"/orders/{order_id}/events", headers=chosen) as events:
                stream_id = events.headers["x-request-id"]
                assert events.status_code == 200
        assert page.status_code == 200
        for request_id in (page.headers["x-request-id"], stream_id):
            assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id  # nginx's $request_id, not the client's
        await person.aclose()


@dataclass
class Page:
    """One open order page, as its EventSource behaves: it reconnects (after `retry`) until it hears `done`."""

    url: str
    cookies: httpx.Cookies
    seen: list[str] = field(default_factory=list)
    connections: int = 0
    refused: list[int] = field(default_factory=list)

    async def watch(self, until: str) -> None:
        retry = 3.0  # the browser's default until the server sets one
        async with httpx.AsyncClient(cookies=self.cookies, verify=False, timeout=30) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    async with client.stream("GET", self.url) as events:
                        self.connections += 1
                        if events.status_code != 200:
                            self.refused.append(events.status_code)
                        async for line in events.aiter_lines():
                            if line.startswith("retry:"):
                                retry = int(line.removeprefix("retry:")) / 1000
                            elif line.startswith("data:") and len(line) > len("data: "):
                                self.seen.append(line)
                            if until in line or line == "event: done":
                                return
                await asyncio.sleep(retry)


async def test_a_rolling_restart_behind_the_documented_proxy_moves_fifty_pages_without_missing_a_status(
    cluster: Cluster, rsa_keys: RsaKeys, tmp_path: Path
) -> None:
    """SIGTERM to one of two instances with 50 open pages: it tells its streams to reconnect and exits at once;
    every page reconnects through nginx to the other instance and shows the change made meanwhile; no 502."""
    with two_instances_behind_nginx(cluster, tmp_path) as (proxy, url_a, stopping):
        person = await signed_in(url_a, cluster.settings)
        (order_id,) = await seed_orders(cluster.database_url, "user@example.com", 1)
        pages = [Page(f"{proxy}/orders/{order_id}/events", person.cookies) for _ in range(50)]
        watching = [asyncio.create_task(page.watch(until="Money sent")) for page in pages]

        async def all_open() -> bool:
            return all(page.seen for page in pages)

        await async_wait_for(all_open, timeout=20, what="every page to open")
        asked = time.monotonic()
        stopping.send_signal(signal.SIGTERM)
        exited_after = await asyncio.to_thread(lambda: (stopping.wait(30), time.monotonic() - asked)[1])
        body = ipn_body(cluster.settings, rsa_keys.alix.private, order_id=order_id)  # the change, once A is gone
        assert httpx.post(f"{proxy}/ipn/alixpay", content=body, verify=False).json() == {"verdict": "applied"}
        await asyncio.wait_for(asyncio.gather(*watching), 20)
        await person.aclose()
    assert exited_after < 3, exited_after  # streams told to go at once, not cut after the 5 s graceful timeout
    for page in pages:  # the status before, then the change made after the instance stopped
        shown = [
            status for line in page.seen for status in ("sending VND to your bank", "Money sent") if status in line
        ]
        assert shown[0] == "sending VND to your bank" and shown[-1] == "Money sent", shown
    assert not [code for page in pages for code in page.refused]  # no 502 while one instance stopped
    moved = [page for page in pages if page.connections > 1]
    assert len(moved) >= 10, len(moved)  # nginx spread the 50 pages over both instances: A's moved to B
