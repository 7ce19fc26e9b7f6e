"""The operations page (administrators): alarms, IPNs, orders that need a look, instances and jobs, live."""

from datetime import timedelta

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from webapp.activity.routes import activity_context
from webapp.auth.guards import requires_admin
from webapp.config import Settings
from webapp.db import DbSession
from webapp.ipn.service import VERDICT_LABELS
from webapp.job_board import instances, job_rows
from webapp.operations.alarms import open_alarms
from webapp.operations.overview import overview


async def overview_context(db_session: DbSession, settings: Settings) -> dict[str, object]:
    return {
        "overview": await overview(
            db_session,
            silence_after=timedelta(minutes=settings.alarm_ipn_silence_minutes),
            stuck_after=timedelta(minutes=settings.support_stuck_after_minutes),
        ),
        "jobs": await job_rows(db_session),  # every instance's, from the job board
        "instances": await instances(db_session),
        "alarms": await open_alarms(db_session),
        "verdict_labels": VERDICT_LABELS,
        "silence_minutes": settings.alarm_ipn_silence_minutes,
    }


@get("/operations", name="operations.index", guards=[requires_admin])
async def operations_page(db_session: DbSession, settings: NamedDependency[Settings]) -> Template:
    context = await overview_context(db_session, settings) | await activity_context(db_session, settings)
    return Template("operations/index.html", context=context)


@get("/operations/overview", name="operations.overview", guards=[requires_admin])
async def operations_overview(db_session: DbSession, settings: NamedDependency[Settings]) -> Template:
    """The live part of the page, polled every few seconds."""
    return Template("operations/_overview.html", context=await overview_context(db_session, settings))
