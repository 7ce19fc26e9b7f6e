"""`/metrics` for Prometheus (a bearer token when set; off in production without one) and the operations page."""

import hmac
from datetime import timedelta

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.response import Template
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from webapp.auth.guards import requires_admin
from webapp.config import Settings
from webapp.db import DbSession
from webapp.ipn.service import VERDICT_LABELS
from webapp.job_board import job_rows
from webapp.operations.alarms import open_alarms
from webapp.operations.overview import overview

METRICS_PATH = "/metrics"


@get(METRICS_PATH, name="operations.metrics", exclude_from_auth=True)
async def metrics(request: Request, settings: NamedDependency[Settings]) -> Response[bytes]:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        if settings.is_production:  # never open to the internet by accident
            raise NotFoundException()
    elif not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
        raise NotAuthorizedException(headers={"www-authenticate": "Bearer"})
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def overview_context(db_session: DbSession, settings: Settings) -> dict[str, object]:
    return {
        "overview": await overview(
            db_session,
            silence_after=timedelta(minutes=settings.alarm_ipn_silence_minutes),
            stuck_after=timedelta(minutes=settings.support_stuck_after_minutes),
        ),
        "jobs": await job_rows(db_session),  # every instance's, from the job board
        "alarms": await open_alarms(db_session),
        "verdict_labels": VERDICT_LABELS,
        "silence_minutes": settings.alarm_ipn_silence_minutes,
    }


@get("/operations", name="operations.index", guards=[requires_admin])
async def operations_page(db_session: DbSession, settings: NamedDependency[Settings]) -> Template:
    return Template("operations/index.html", context=await overview_context(db_session, settings))


@get("/operations/overview", name="operations.overview", guards=[requires_admin])
async def operations_overview(db_session: DbSession, settings: NamedDependency[Settings]) -> Template:
    """The live part of the page, polled every few seconds."""
    return Template("operations/_overview.html", context=await overview_context(db_session, settings))
