"""`POST /ipn/alixpay`: no session, no CSRF; answers with the verdict's HTTP status.

An ASGI route rather than a `@post` handler: a delivery needs no request object, no dependency resolution and no
content negotiation, which cost ~65 µs of an IPN's ~0.75 ms of CPU at 16 connections (issue 30, docs/PERFORMANCE.md,
"The IPN receiver at the ASGI level"). The app's middleware still applies: request id, metrics, the IPN rate limit,
security headers, error pages.
"""

import time

from litestar import asgi
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from webapp.ipn.intake import IpnIntake
from webapp.ipn.service import HTTP_STATUS, IPN_VERDICTS, Delivery, log_verdict
from webapp.metrics import IPN_ACK_SECONDS

IPN_PATH = "/ipn/alixpay"
ANSWERED_METHODS = "answered_methods"
"""The route option naming the methods an ASGI route answers (Litestar knows them only for `@get`, `@post` …)."""
METHODS = ("POST",)
ANSWERS = {verdict: (HTTP_STATUS[verdict], b'{"verdict":"%s"}' % verdict.value.encode()) for verdict in IPN_VERDICTS}
"""Each verdict's HTTP status and JSON body, encoded once."""
JSON_HEADER = (b"content-type", b"application/json")


async def read_capped(receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The body up to `limit` bytes and whether there was more; None when the sender went away before its end."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
        if not message.get("more_body", False):
            return b"".join(chunks), False


def ipn_receiver(intake: IpnIntake) -> ASGIRouteHandler:
    """The route that hands each delivery to `intake` and answers with its verdict."""

    @asgi(
        IPN_PATH,
        name="ipn.alixpay",
        opt={"exclude_from_csrf": True, "exclude_from_auth": True, ANSWERED_METHODS: METHODS},
        copy_scope=False,
    )
    async def receive_ipn(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            raise MethodNotAllowedException(headers={"Allow": ", ".join(METHODS)})
        started = time.perf_counter()
        read = await read_capped(receive, intake.max_body_bytes)
        if read is None:
            return  # nothing whole to store: Alix Pay delivers it again
        body, too_large = read
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        source_address = scope["client"][0] if scope.get("client") else None
        receipt_id, judged = await intake.receive(Delivery(body, headers, source_address, too_large))
        log_verdict(receipt_id, judged)
        IPN_ACK_SECONDS.observe(time.perf_counter() - started)
        status, answer = ANSWERS[judged.verdict]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [JSON_HEADER, (b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return receive_ipn
