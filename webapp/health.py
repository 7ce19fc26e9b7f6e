"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: it can do its job) for load balancers.

Ready means: the database answers, its schema is at the newest migration this code ships, and the keys load.
"""

import logging

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.alixpay.keys import KeyLoadError, load_private_key, load_public_key
from webapp.config import Settings
from webapp.db import DbSession
from webapp.schema import head_revision

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


async def schema_state(db_session: DbSession) -> str:
    """current, behind (an older or unknown revision), or missing (never migrated)."""
    try:
        revision = (await db_session.exec(text("SELECT version_num FROM alembic_version"))).scalar()  # type: ignore[call-overload]
    except SQLAlchemyError:
        await db_session.rollback()
        return "missing"
    return "current" if revision == head_revision() else "behind"


def keys_state(settings: Settings) -> str:
    try:
        load_private_key(settings.alixpay.private_key_file)
        for path in settings.alixpay.public_key_files:
            load_public_key(path)
    except KeyLoadError as exc:
        logger.warning("key check failed: %s", exc)
        return "unreadable"
    return "ok"


@get("/readyz", name="health.ready")
async def readyz(db_session: DbSession, settings: NamedDependency[Settings]) -> Response[dict[str, str]]:
    checks = {"database": "unreachable", "schema": "unknown", "keys": keys_state(settings)}
    if await database_is_ready(db_session):
        checks["database"], checks["schema"] = "ok", await schema_state(db_session)
    ready = checks == {"database": "ok", "schema": "current", "keys": "ok"}
    status = HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE
    return Response({"status": "ready" if ready else "unavailable", **checks}, status_code=status)
