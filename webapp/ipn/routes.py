"""`POST /ipn/alixpay`: no session, no CSRF; answers with the verdict's HTTP status."""

import time

from litestar import Request, Response, post
from litestar.di import NamedDependency

from webapp.config import Settings
from webapp.ipn.intake import IpnIntake
from webapp.ipn.service import HTTP_STATUS, Delivery
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
async def receive_ipn(
    request: Request, settings: NamedDependency[Settings], ipn_intake: NamedDependency[IpnIntake]
) -> Response[dict[str, str]]:
    started = time.perf_counter()
    body, too_large = await read_capped(request, settings.ipn_max_body_bytes)
    source_address = request.client.host if request.client else None
    verdict = await ipn_intake.receive(Delivery(body, dict(request.headers), source_address, too_large))
    IPN_ACK_SECONDS.observe(time.perf_counter() - started)
    return Response({"verdict": verdict.value}, status_code=HTTP_STATUS[verdict])
