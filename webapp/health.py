"""Liveness (`/healthz`) and readiness (`/readyz`, which pings the database) for load balancers."""

import logging

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.db import DbSession

logger = logging.getLogger(__name__)


@get("/healthz", name="health.live")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def database_is_ready(db_session: DbSession) -> bool:
    try:
        await db_session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("database ping failed: %s", type(exc).__name__)
        return False
    return True


@get("/readyz", name="health.ready")
async def readyz(db_session: DbSession) -> Response[dict[str, str]]:
    if await database_is_ready(db_session):
        return Response({"status": "ready", "database": "ok"}, status_code=HTTP_200_OK)
    return Response({"status": "unavailable", "database": "unreachable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
