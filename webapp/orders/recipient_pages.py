"""The person's saved recipients: rename (a label such as "Mum") and delete; deleting one never touches an order."""

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from webapp.auth.guards import SignedInRequest, requires_user
from webapp.db import DbSession
from webapp.orders.recipients import MAX_LABEL_CHARS, own_recipient, saved_recipients


class RecipientPages(Controller):
    path = "/account/recipients"
    guards = [requires_user]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="recipients.list")
    async def show(self, request: SignedInRequest, db_session: DbSession, done: FromQuery[str] = "") -> Template:
        context = {
            "recipients": await saved_recipients(db_session, request.user.id),
            "max_label": MAX_LABEL_CHARS,
            "done": done if done in ("renamed", "deleted") else "",
        }
        return Template("account/recipients.html", context=context)

    @post("/{recipient_id:int}/label", name="recipients.rename", status_code=303)
    async def rename(
        self,
        request: SignedInRequest,
        db_session: DbSession,
        recipient_id: FromPath[int],
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect:
        """An empty label removes it (the recipient's name shows instead)."""
        recipient = await own_recipient(db_session, recipient_id, request.user.id)
        if recipient is None:
            raise NotFoundException()
        recipient.label = " ".join(data.get("label", "").split())[:MAX_LABEL_CHARS] or None
        await db_session.commit()
        return Redirect(f"{request.app.route_reverse('recipients.list')}?done=renamed", status_code=303)

    @post("/{recipient_id:int}/delete", name="recipients.delete", status_code=303)
    async def delete(self, request: SignedInRequest, db_session: DbSession, recipient_id: FromPath[int]) -> Redirect:
        recipient = await own_recipient(db_session, recipient_id, request.user.id)
        if recipient is None:
            raise NotFoundException()
        await db_session.delete(recipient)
        await db_session.commit()
        return Redirect(f"{request.app.route_reverse('recipients.list')}?done=deleted", status_code=303)
