"""The home page and its live system-status fragment."""

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from webapp.config import DEV_ACCOUNTS, Settings
from webapp.db import DbSession
from webapp.health import database_is_ready


@get("/", name="home.index")
async def index(settings: NamedDependency[Settings]) -> Template:
    # The local IdP's seeded accounts, so a newcomer knows whom to sign in as; never shown in production.
    dev_accounts = {} if settings.is_production else DEV_ACCOUNTS
    return Template(template_name="home/index.html", context={"dev_accounts": dev_accounts})


@get("/system-status", name="home.system_status")
async def system_status(db_session: DbSession) -> Template:
    return Template(template_name="home/_system_status.html", context={"ready": await database_is_ready(db_session)})
