"""Record a sign-in (first and last) and work out a person's roles."""

from collections.abc import Mapping
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User, utcnow
from webapp.auth.oidc import Identity
from webapp.config import Settings


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


async def record_sign_in(session: AsyncSession, identity: Identity) -> User:
    async with session.begin():
        user = (
            await session.exec(select(User).where(User.issuer == identity.issuer, User.subject == identity.subject))
        ).first()
        now = utcnow()
        if user is None:
            user = User(
                issuer=identity.issuer,
                subject=identity.subject,
                email=identity.email,
                name=identity.name,
                first_login_at=now,
                last_login_at=now,
            )
            session.add(user)
        else:
            user.email, user.name, user.last_login_at = identity.email, identity.name, now
        await session.flush()
    return user
