"""`GET /activity`: the charts section of the operations page and support's home, redrawn every minute."""

from litestar import get
from litestar.response import Template

from webapp.activity.charts import Chart, charts
from webapp.activity.figures import activity
from webapp.auth.guards import requires_support
from webapp.config import AppSettings, Settings
from webapp.db import DbSession


async def activity_charts_of(db_session: DbSession, settings: Settings) -> list[Chart]:
    """The charts, by hours and days of the console's time zone (`SUPPORT_TIMEZONE`)."""
    return charts(await activity(db_session, zone=settings.console_timezone))


async def activity_context(db_session: DbSession, settings: Settings) -> dict[str, object]:
    return {"charts": await activity_charts_of(db_session, settings), "timezone": settings.console_timezone}


@get("/activity", name="activity.charts", guards=[requires_support])
async def activity_charts(db_session: DbSession, settings: AppSettings) -> Template:
    return Template("activity/_charts.html", context=await activity_context(db_session, settings))
