"""The home page and its live system-status fragment."""

from litestar import get
from litestar.response import Template

from webapp.db import DbSession
from webapp.health import database_is_ready


@get("/", name="home.index")
async def index() -> Template:
    return Template(template_name="home/index.html")


@get("/system-status", name="home.system_status")
async def system_status(db_session: DbSession) -> Template:
    return Template(template_name="home/_system_status.html", context={"ready": await database_is_ready(db_session)})
