"""Spending a verified launch token: its `jti` once, and the person it names remembered as that partner's user."""

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User
from webapp.auth.service import remember_user
from webapp.db import utcnow
from webapp.embed.models import LaunchTokenUse, Partner
from webapp.embed.tokens import LaunchClaims, LaunchRefused

PARTNER_ISSUER_PREFIX = "partner:"


async def spend_launch_token(
    db_sessionmaker: async_sessionmaker[AsyncSession], partner: Partner, claims: LaunchClaims
) -> User:
    """Accept the token once: of two requests with one `jti`, the unique constraint lets exactly one commit.

    The person is a user of their own (issuer `partner:<slug>`), so an embedded session sees only the orders
    placed through that partner, never those of someone signing in to our own pages with the same email.
    """
    async with db_sessionmaker() as session:
        try:
            async with session.begin():
                session.add(LaunchTokenUse(partner_id=partner.id or 0, jti=claims.jti, expires_at=claims.expires_at))
                await session.flush()
                return await remember_user(
                    session,
                    issuer=PARTNER_ISSUER_PREFIX + partner.slug,
                    subject=claims.subject,
                    email=claims.email,
                    name=None,
                )
        except IntegrityError as error:
            raise LaunchRefused("replayed") from error


async def delete_spent_tokens(db_sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Forget spent tokens once they have expired: an expired token is refused before its `jti` is looked at."""
    async with db_sessionmaker() as session, session.begin():
        result = await session.exec(delete(LaunchTokenUse).where(LaunchTokenUse.expires_at < utcnow()))  # type: ignore[call-overload,arg-type]
        return int(result.rowcount or 0)
