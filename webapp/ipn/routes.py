"""`POST /ipn/alixpay`: no session, no CSRF; answers with the verdict's HTTP status."""

import time

from litestar import Request, Response, post
from litestar.di import NamedDependency

from webapp.ipn.intake import IpnIntake
from webapp.ipn.service import HTTP_STATUS, Delivery, log_verdict
from webapp.metrics import IPN_ACK_SECONDS

IPN_PATH = "/ipn/alixpay"


async def read_capped(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether there was more."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


@post(IPN_PATH, name="ipn.alixpay", exclude_from_csrf=True, exclude_from_auth=True, status_code=200)
async def receive_ipn(request: Request, ipn_intake: NamedDependency[IpnIntake]) -> Response[dict[str, str]]:
    # One dependency: Litestar resolves two or more in a task group of their own, on every request.
    started = time.perf_counter()
    body, too_large = await read_capped(request, ipn_intake.max_body_bytes)
    source_address = request.client.host if request.client else None
    receipt_id, judged = await ipn_intake.receive(Delivery(body, dict(request.headers), source_address, too_large))
    log_verdict(receipt_id, judged)
    IPN_ACK_SECONDS.observe(time.perf_counter() - started)
    return Response({"verdict": judged.verdict.value}, status_code=HTTP_STATUS[judged.verdict])
