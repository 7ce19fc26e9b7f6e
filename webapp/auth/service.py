"""Record a sign-in (first and last) and work out a person's roles."""

from collections.abc import Mapping
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User
from webapp.auth.oidc import Identity
from webapp.config import Settings
from webapp.db import utcnow


def roles_for(email: str, claims: Mapping[str, Any], settings: Settings) -> frozenset[str]:
    """`user` for everyone; `support`/`admin` from SUPPORT_EMAILS/ADMIN_EMAILS or the configured claim."""
    claim = claims.get(settings.oidc.roles_claim)
    names = {claim} if isinstance(claim, str) else set(claim) if isinstance(claim, list) else set()
    roles = {"user"}
    if email in settings.support_emails or settings.oidc.support_role in names:
        roles.add("support")
    if email in settings.admin_emails or settings.oidc.admin_role in names:
        roles |= {"support", "admin"}
    return frozenset(roles)


async def remember_user(session: AsyncSession, *, issuer: str, subject: str, email: str, name: str | None) -> User:
    """The person this issuer vouches for, added on first sign-in, their email and name kept current."""
    user = (await session.exec(select(User).where(User.issuer == issuer, User.subject == subject))).first()
    now = utcnow()
    if user is None:
        user = User(issuer=issuer, subject=subject, email=email, name=name, first_login_at=now, last_login_at=now)
        session.add(user)
    else:
        user.email, user.name, user.last_login_at = email, name, now
    await session.flush()
    return user


async def record_sign_in(session: AsyncSession, identity: Identity, chosen_locale: str | None = None) -> User:
    """The person, kept current; a language they chose before signing in becomes theirs if they had none."""
    async with session.begin():
        user = await remember_user(
            session, issuer=identity.issuer, subject=identity.subject, email=identity.email, name=identity.name
        )
        if user.locale is None and chosen_locale:
            user.locale = chosen_locale
        return user
