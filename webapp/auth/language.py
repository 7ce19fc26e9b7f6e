"""The language follows the person: a choice made in the language switch is kept on their account.

Signed in, a `?lang=` choice goes into the session (so every page of it follows) and onto the account (so a
sign-in on another device starts in it, and the emails are written in it: `notifications/mailer.py`).
Accept-Language is only the first guess, for someone who never chose.
"""

from litestar import Request
from sqlmodel import update

from webapp.auth.models import User
from webapp.i18n import LOCALE_SESSION_KEY, supported


async def remember_language(request: Request) -> None:
    """`before_request` of the app: a signed-in person's new choice is kept (one write per change, not per page)."""
    chosen = supported(request.query_params.get("lang"))
    user = request.scope.get("user")
    session = request.scope.get("session")
    if not chosen or user is None or not isinstance(session, dict) or session.get(LOCALE_SESSION_KEY) == chosen:
        return
    session[LOCALE_SESSION_KEY] = chosen
    async with request.app.state.db_sessionmaker() as db, db.begin():
        await db.exec(update(User).where(User.id == user.id).values(locale=chosen))  # type: ignore[arg-type]
