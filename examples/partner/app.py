"""An example partner: mints launch tokens, embeds the cash-out, verifies our webhooks, reads its orders back.

Its orders are read through the partner API with an API key (`/cashouts.json`), as a reconciliation job would.

Standalone on purpose (it imports nothing from `webapp`): it is what a partner writes from docs/embedding.md.
"""

import hashlib
import hmac
import html
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import OctKey
from litestar import Litestar, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Response

SLUG = os.environ.get("PARTNER_SLUG", "example")
LAUNCH_SECRET = os.environ.get("PARTNER_LAUNCH_SECRET", "")
WEBHOOK_SECRET = os.environ.get("PARTNER_WEBHOOK_SECRET", "")
API_KEY = os.environ.get("PARTNER_API_KEY", "")
APP_URL = os.environ.get("CASHOUT_APP_URL", "http://localhost:8000").rstrip("/")
AUDIENCE = os.environ.get("CASHOUT_AUDIENCE", "http://127.0.0.1:8000")
USER = {"sub": "wallet-user-1", "email": "wallet.user@example.com"}
TOLERANCE_SECONDS = 300
received: list[dict[str, Any]] = []


def launch_token(**extra: Any) -> str:
    """What the partner's server does for its signed-in user: a JWT valid for two minutes, used once."""
    now = int(time.time())
    claims = {
        "iss": SLUG,
        "aud": AUDIENCE,
        "sub": USER["sub"],
        "email": USER["email"],
        "email_verified": True,
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "reference": f"wd-{uuid.uuid4().hex[:12]}",  # our own id for this withdrawal: every webhook gives it back
        **extra,
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(LAUNCH_SECRET), algorithms=["HS256"])


def verify_signature(secret: str, body: bytes, header: str, now: int) -> bool:
    """The documented recipe: `t` is recent, and HMAC-SHA256(secret, "<t>.<body>") equals one `v1`."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamp = next((value for name, value in fields if name == "t"), "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in fields)


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example wallet</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 1rem; }}
  iframe {{ width: 100%; max-width: 40rem; height: 720px; border: 1px solid #888; }}
</style>
</head><body>
<h1>Example wallet</h1>
<p>Signed in as {email}. <a href="/redirect">Cash out in a full page instead</a></p>
<iframe id="cashout" title="Cash out USDT" src="{src}"></iframe>
<h2>Events from the cash-out</h2>
<ol id="events"></ol>
<script>
  window.cashoutMessages = [];
  window.addEventListener("message", function (event) {{
    if (event.origin !== {app_origin}) {{ return; }}  // only the cash-out may talk to us
    window.cashoutMessages.push(event.data);
    var item = document.createElement("li");
    item.textContent = JSON.stringify(event.data);
    document.getElementById("events").appendChild(item);
    if (event.data.type === "resize") {{ document.getElementById("cashout").style.height = event.data.height + "px"; }}
  }});
</script>
</body></html>"""


@get("/")
async def index(request: Request, lang: FromQuery[str | None] = None) -> Response[str]:
    extra = {"locale": lang} if lang else {}
    query = urlencode({"token": launch_token(**extra), "origin": own_origin(request)})
    page = PAGE.format(
        email=html.escape(USER["email"]),
        src=html.escape(f"{APP_URL}/embed/{SLUG}/start?{query}"),
        app_origin=json.dumps(APP_URL),
    )
    return Response(page, media_type="text/html")


@get("/redirect")
async def redirect_mode(request: Request) -> Redirect:
    token = launch_token(return_url=f"{own_origin(request)}/returned")
    return Redirect(f"{APP_URL}/embed/{SLUG}/start?{urlencode({'token': token})}")


def verify_return(secret: str, order_id: str, status: str, t: str, sigs: list[str], now: int) -> bool:
    """The documented recipe: `t` is recent, and HMAC-SHA256(secret, "<t>.<order_id>.<status>") equals one `sig`.

    During a rotation of the secret the link carries two.
    """
    expected = hmac.new(secret.encode(), f"{t}.{order_id}.{status}".encode(), hashlib.sha256).hexdigest()
    fresh = t.isdigit() and abs(now - int(t)) <= TOLERANCE_SECONDS
    return fresh and any(hmac.compare_digest(sig, expected) for sig in sigs)


@get("/returned")
async def returned(request: Request) -> Response[str]:
    query = request.query_params
    order_id, status = query.get("order_id", ""), query.get("status", "")
    signed = verify_return(
        WEBHOOK_SECRET, order_id, status, query.get("t", ""), query.getall("sig", []), int(time.time())
    )
    verdict = "verified" if signed else "NOT verified"
    body = f"<p>Back from the cash-out: order {html.escape(order_id)} is {html.escape(status)} ({verdict}).</p>"
    return Response(body, media_type="text/html")


@post("/webhooks", status_code=200)
async def webhook(request: Request) -> Response[str]:
    body = await request.body()
    signature = request.headers.get("cashout-signature", "")
    if not verify_signature(WEBHOOK_SECRET, body, signature, int(time.time())):
        return Response("bad signature", status_code=400)
    event = json.loads(body)
    if all(seen["id"] != event["id"] for seen in received):  # at least once: deduplicate on the event id
        received.append(event)
    return Response("ok")


@get("/webhooks.json")
async def webhook_log() -> list[dict[str, Any]]:
    return received


@get("/cashouts.json")
async def cashouts() -> dict[str, Any]:
    """Reconciliation, as a partner's server does it: every order read back through the partner API, page by page."""
    orders: list[dict[str, Any]] = []
    cursor = None
    async with httpx.AsyncClient(base_url=APP_URL, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10) as api:
        while True:
            params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = (await api.get("/api/partner/v1/orders", params=params)).raise_for_status().json()
            orders += page["orders"]
            cursor = page["nextCursor"]
            if cursor is None:
                return {"orders": orders}


@get("/healthz")
async def healthz() -> str:
    return "ok"


app = Litestar(route_handlers=[index, redirect_mode, returned, webhook, webhook_log, cashouts, healthz])

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("PARTNER_HOST", "127.0.0.1"), port=int(os.environ.get("PARTNER_PORT", "8003")))
