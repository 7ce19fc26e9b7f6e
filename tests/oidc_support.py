"""A real local IdP (oidc-provider-mock as a process) and a tampering proxy in front of its token and JWKS endpoints.

The proxy passes everything through by default; a test sets `mode` to make the IdP misbehave in one precise way
(a 500 from the token endpoint, or an id_token with a bad signature, issuer, audience, expiry or nonce).
"""

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.processes import running_process
from webapp.dev.stack import LOOPBACK, free_port

SEEDED_USERS = [
    {"sub": "user@example.com", "email": "user@example.com", "email_verified": True, "name": "Nguyễn Văn Ánh"},
    {"sub": "support@example.com", "email": "support@example.com", "email_verified": True, "groups": ["support"]},
    {"sub": "admin@example.com", "email": "admin@example.com", "email_verified": True, "groups": ["admin"]},
    {"sub": "unverified@example.com", "email": "unverified@example.com", "email_verified": False},
]
TAMPERING_MODES = ("pass", "token_500", "bad_signature", "wrong_iss", "wrong_aud", "expired", "wrong_nonce", "new_key")


@dataclass
class Idp:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_idp(log_file: Path) -> Iterator[Idp]:
    port = free_port()
    args = [sys.executable, "-m", "oidc_provider_mock", "--host", LOOPBACK, "--port", str(port)]
    for user in SEEDED_USERS:
        args += ["--user-claims", json.dumps(user)]
    url = f"http://{LOOPBACK}:{port}"
    ready_url = f"{url}/.well-known/openid-configuration"
    with running_process(args, env={}, log_file=log_file, ready_url=ready_url, what="the IdP") as process:
        yield Idp(url, process)


def _b64_claims_swap(token: str, claims: dict) -> str:
    """The same header and signature over different claims: a token whose signature cannot verify."""
    import base64

    header, _payload, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


@dataclass
class TamperingProxy:
    idp_url: str
    url: str = ""
    mode: str = "pass"
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    jwks_fetches: int = 0
    tamper_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "tamper"}))
    new_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "rotated"}))

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def rewrite_id_token(self, id_token: str) -> str:
        claims = jwt.decode(id_token, self._idp_keys()).claims  # verified: it is the IdP's own token
        if self.mode == "bad_signature":
            return _b64_claims_swap(id_token, {**claims, "email": "someone.else@example.com"})
        changes = {
            "wrong_iss": {"iss": "http://evil.example"},
            "wrong_aud": {"aud": ["another-client"]},
            "expired": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
            "wrong_nonce": {"nonce": "not-the-nonce"},
            "new_key": {},
        }[self.mode]
        key = self.new_key if self.mode == "new_key" else self.tamper_key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, {**claims, **changes}, key)

    def _idp_keys(self):
        from joserfc.jwk import KeySet

        return KeySet.import_key_set(httpx.get(f"{self.idp_url}/jwks").json())

    def jwks(self) -> dict:
        keys = httpx.get(f"{self.idp_url}/jwks").json()["keys"]
        keys.append(self.tamper_key.as_dict(private=False))
        if self.mode == "new_key":
            keys.append(self.new_key.as_dict(private=False))
        return {"keys": keys}


@contextlib.contextmanager
def running_proxy(idp: Idp) -> Iterator[TamperingProxy]:
    proxy = TamperingProxy(idp.url)
    idp_host = idp.url.removeprefix("http://")

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/.well-known/openid-configuration"):
                metadata = httpx.get(f"{idp.url}{self.path}").json()
                metadata["token_endpoint"] = f"{proxy.url}/oauth2/token"
                metadata["jwks_uri"] = f"{proxy.url}/jwks"
                self._send(200, json.dumps(metadata).encode())
            elif self.path == "/jwks":
                proxy.jwks_fetches += 1
                self._send(200, json.dumps(proxy.jwks()).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            proxy.token_requests.append(parse_qs(body.decode()))
            if proxy.mode == "token_500":
                self._send(500, b'{"error": "server_error"}')
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = httpx.post(f"http://{idp_host}{self.path}", content=body, headers=headers)
            token = answer.json()
            if answer.status_code == 200 and proxy.mode != "pass" and "id_token" in token:
                token["id_token"] = proxy.rewrite_id_token(token["id_token"])
            self._send(answer.status_code, json.dumps(token).encode())

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    proxy.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
