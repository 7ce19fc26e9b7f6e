"""The person's email preference: progress emails on or off (the outcome is always mailed)."""

from litestar import Controller, get, post
from litestar.params import URLEncodedBody
from litestar.response import Template

from webapp.auth.guards import SignedInRequest, requires_user
from webapp.auth.models import User
from webapp.db import DbSession


class NotificationPreferences(Controller):
    path = "/account/notifications"
    guards = [requires_user]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="account.notifications")
    async def show(self, request: SignedInRequest, db_session: DbSession) -> Template:
        user = await db_session.get(User, request.user.id)
        return Template("account/notifications.html", context={"email_updates": bool(user and user.email_updates)})

    @post("/", name="account.notifications.save", status_code=200)
    async def save(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        data: URLEncodedBody[dict[str, str]],
    ) -> Template:
        user = await db_session.get(User, request.user.id)
        if user is not None:
            user.email_updates = data.get("email_updates") == "on"
            await db_session.commit()
        context = {"email_updates": bool(user and user.email_updates), "saved": True}
        return Template("account/notifications.html", context=context)
