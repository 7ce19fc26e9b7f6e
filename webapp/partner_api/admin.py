"""Admins manage a partner's API keys: make one (shown once), see each one's name, prefix and last use, revoke.

Every change is on the audit log. The partner's own page (`embed/admin.py`) links here.
"""

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from webapp import audit
from webapp.auth.guards import SignedInRequest, requires_admin
from webapp.db import Sessionmaker
from webapp.embed.admin import found
from webapp.partner_api.keys import keys_of, make_key, revoke_key


async def _page(
    db_sessionmaker: Sessionmaker, slug: str, *, made: str | None = None, error: str | None = None
) -> Template:
    async with db_sessionmaker() as session:
        partner = await found(session, slug)
        keys = await keys_of(session, partner)
    context = {"partner": partner, "keys": keys, "made": made, "error": error}
    return Template("partner_api/keys.html", context=context, status_code=422 if error else 200)


class ApiKeyAdminController(Controller):
    path = "/admin/partners/{slug:str}/api-keys"
    guards = [requires_admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="api_keys.list")
    async def list_keys(self, db_sessionmaker: Sessionmaker, slug: FromPath[str]) -> Template:
        return await _page(db_sessionmaker, slug)

    @post("/", name="api_keys.create", status_code=200)
    async def create(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        slug: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Template:
        """Make a key; the answer shows it once."""
        try:
            async with db_sessionmaker() as session, session.begin():
                made = await make_key(session, await found(session, slug), data.get("name", ""))
        except ValueError as error:
            return await _page(db_sessionmaker, slug, error=str(error))
        detail = f"{slug} {made.key.prefix}"
        await audit.append(db_sessionmaker, actor=request.user.email, action="api_key_created", detail=detail)
        return await _page(db_sessionmaker, slug, made=made.plain)

    @post("/{prefix:str}/revoke", name="api_keys.revoke", status_code=303)
    async def revoke(
        self, request: SignedInRequest, db_sessionmaker: Sessionmaker, slug: FromPath[str], prefix: FromPath[str]
    ) -> Redirect:
        async with db_sessionmaker() as session, session.begin():
            if await revoke_key(session, await found(session, slug), prefix) is None:
                raise NotFoundException()
        await audit.append(
            db_sessionmaker, actor=request.user.email, action="api_key_revoked", detail=f"{slug} {prefix}"
        )
        return Redirect(request.app.route_reverse("api_keys.list", slug=slug), status_code=303)
