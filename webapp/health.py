"""What the infrastructure asks: liveness (`/healthz`), readiness (`/readyz`) and Prometheus (`/metrics`).

Ready means: the database answers, its schema is at the newest migration this code ships, the keys load, and
`SECRETS_KEY` opens every partner secret stored.
`/metrics` (a bearer token when set; off in production without one) also measures, at each scrape, readiness
and the outboxes' backlog from the database: the cluster's numbers, the same on every instance (alert on the
maximum over instances).
"""

import hmac
import logging

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, func, select

from webapp.alixpay.keys import KeyLoadError, load_private_key, load_public_key
from webapp.config import Settings
from webapp.db import DbSession, utcnow
from webapp.embed.models import WebhookEvent
from webapp.embed.partners import PartnerSecrets, unopened_secrets
from webapp.metrics import OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING, exported
from webapp.metrics import READY as READY_GAUGE
from webapp.notifications.models import EmailMessage
from webapp.schema import head_revision
from webapp.secretbox import SecretBox

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


async def secrets_state(db_session: DbSession, box: SecretBox) -> str:
    """ok, or unreadable when `SECRETS_KEY` opens not every partner secret stored (a key removed too early)."""
    unopened = await unopened_secrets(db_session, box)
    if unopened:
        logger.warning("SECRETS_KEY opens no key of these partners' secrets: %s", ", ".join(unopened))
    return "unreadable" if unopened else "ok"


READY = {"database": "ok", "schema": "current", "keys": "ok", "secrets": "ok"}
"""What every check says when the instance is ready."""


async def readiness(db_session: DbSession, settings: Settings, secrets: PartnerSecrets) -> dict[str, str]:
    """Each check's state (`READY` when all pass): `/readyz` answers with it, `/metrics` exports it as gauges."""
    checks = {"database": "unreachable", "schema": "unknown", "keys": keys_state(settings), "secrets": "unknown"}
    if await database_is_ready(db_session):
        checks["database"], checks["schema"] = "ok", await schema_state(db_session)
        if checks["schema"] == "current":
            checks["secrets"] = await secrets_state(db_session, secrets.box)
    return checks


OUTBOXES = {"emails": EmailMessage, "partner_webhooks": WebhookEvent}
METRICS_PATH = "/metrics"


async def measure(session: DbSession, settings: Settings, secrets: PartnerSecrets) -> None:
    """Readiness and each outbox's backlog (rows pending, the oldest one's age) into their gauges."""
    checks = await readiness(session, settings, secrets)
    for check, good in READY.items():
        READY_GAUGE.labels(check).set(1 if checks[check] == good else 0)
    if checks["database"] != "ok":
        return
    now = utcnow()
    for name, model in OUTBOXES.items():
        pending = select(func.count(), func.min(col(model.created_at))).where(col(model.state) == "pending")
        count, oldest = (await session.exec(pending)).one()
        OUTBOX_PENDING.labels(name).set(count)
        OUTBOX_OLDEST_SECONDS.labels(name).set((now - oldest).total_seconds() if oldest else 0)


@get(METRICS_PATH, name="health.metrics", exclude_from_auth=True)
async def metrics(
    request: Request,
    db_session: DbSession,
    settings: NamedDependency[Settings],
    partner_secrets: NamedDependency[PartnerSecrets],
) -> Response[bytes]:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        if settings.is_production:  # never open to the internet by accident
            raise NotFoundException()
    elif not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
        raise NotAuthorizedException(headers={"www-authenticate": "Bearer"})
    await measure(db_session, settings, partner_secrets)
    return Response(exported(), media_type=CONTENT_TYPE_LATEST)


@get("/readyz", name="health.ready")
async def readyz(
    db_session: DbSession, settings: NamedDependency[Settings], partner_secrets: NamedDependency[PartnerSecrets]
) -> Response[dict[str, str]]:
    checks = await readiness(db_session, settings, partner_secrets)
    ready = checks == READY
    status = HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE
    return Response({"status": "ready" if ready else "unavailable", **checks}, status_code=status)
