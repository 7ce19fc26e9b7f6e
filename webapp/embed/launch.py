"""Spending a verified launch token: its `jti` once, and the person it names remembered as that partner's user.

Launch tickets (made by the partner API for a partner's server) are redeemed here into the same claims.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User
from webapp.auth.service import remember_user
from webapp.db import in_utc, utcnow
from webapp.embed.models import LaunchTicket, LaunchTokenUse, Partner
from webapp.embed.tokens import MAX_LIFETIME_SECONDS, LaunchClaims, LaunchRefused, launch_claims

PARTNER_ISSUER_PREFIX = "partner:"
TICKET_SECONDS = MAX_LIFETIME_SECONDS
"""How long a launch ticket may wait to be opened: as long as a launch token may live."""
TICKET_KEPT_AFTER_EXPIRY = timedelta(hours=1)
"""An expired ticket is kept this long, so that a late click reads "expired", not "not a valid link"."""


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
    """Forget spent tokens and tickets once they have expired: an expired one is refused before it is looked up."""
    async with db_sessionmaker() as session, session.begin():
        result = await session.exec(delete(LaunchTokenUse).where(LaunchTokenUse.expires_at < utcnow()))  # type: ignore[call-overload,arg-type]
        forgotten = utcnow() - TICKET_KEPT_AFTER_EXPIRY
        tickets = await session.exec(delete(LaunchTicket).where(LaunchTicket.expires_at < forgotten))  # type: ignore[call-overload,arg-type]
        return int(result.rowcount or 0) + int(tickets.rowcount or 0)


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue_ticket(session: AsyncSession, partner: Partner, claims: dict[str, Any]) -> tuple[str, datetime]:
    """A single-use launch ticket for these claims, valid for `TICKET_SECONDS`.

    The claims are checked as a token's; a refusal raises `LaunchRefused`, and the caller's transaction undoes the row.
    """
    expires_at = utcnow() + timedelta(seconds=TICKET_SECONDS)
    plain = secrets.token_urlsafe(32)
    ticket = LaunchTicket(
        partner_id=partner.id or 0, ticket_hash=_ticket_hash(plain), claims=claims, expires_at=expires_at
    )
    session.add(ticket)
    await session.flush()  # its id names it as a token's `jti` would
    launch_claims(ticket_claims(ticket), slug=partner.slug, return_urls=partner.return_urls, expires_at=expires_at)
    return plain, expires_at


def ticket_claims(ticket: LaunchTicket) -> dict[str, Any]:
    return ticket.claims | {"jti": f"ticket:{ticket.id}"}


async def redeem_ticket(
    db_sessionmaker: async_sessionmaker[AsyncSession], partner: Partner, presented: str
) -> LaunchClaims:
    """The claims of an unexpired ticket of this partner (spent with the session it opens, as a token's `jti`)."""
    if not 20 <= len(presented) <= 100:
        raise LaunchRefused("malformed", "ticket")
    async with db_sessionmaker() as session:
        query = select(LaunchTicket).where(
            LaunchTicket.ticket_hash == _ticket_hash(presented), LaunchTicket.partner_id == partner.id
        )
        ticket = (await session.exec(query)).first()
    if ticket is None:
        raise LaunchRefused("malformed", "unknown ticket")
    if in_utc(ticket.expires_at) <= utcnow():
        raise LaunchRefused("expired")
    return launch_claims(
        ticket_claims(ticket), slug=partner.slug, return_urls=partner.return_urls, expires_at=in_utc(ticket.expires_at)
    )
