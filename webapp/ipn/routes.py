"""`POST /ipn/alixpay`: no session, no CSRF; answers with the verdict's HTTP status."""

from litestar import Request, Response, post
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.config import Settings
from webapp.ipn.service import HTTP_STATUS, IpnVerdict, process, store_raw

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
    request: Request,
    settings: NamedDependency[Settings],
    db_sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]],
    alixpay: NamedDependency[AlixPayClient],
    channels: NamedDependency[ChannelsPlugin],
) -> Response[dict[str, str]]:
    body, too_large = await read_capped(request, settings.ipn_max_body_bytes)
    receipt_id = await store_raw(
        db_sessionmaker,
        body=body,
        headers=dict(request.headers),
        source_address=request.client.host if request.client else None,
        too_large=too_large,
    )
    verdict = (
        IpnVerdict.TOO_LARGE
        if too_large
        else await process(db_sessionmaker, receipt_id, alixpay=alixpay, channels=channels)
    )
    return Response({"verdict": verdict.value}, status_code=HTTP_STATUS[verdict])
