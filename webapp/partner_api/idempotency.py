"""`Idempotency-Key`, as Stripe has it: one key, one request, one answer, kept 24 hours.

The same key with the same request gets the first answer again (nothing is made twice); with another request, a 409.

The answer is stored in the transaction that made what it describes, so a request that failed left nothing to
replay, and of two racing requests with one key the unique constraint lets one through.
"""

import hashlib
from datetime import timedelta

from litestar import Response
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import in_utc, utcnow
from webapp.partner_api.models import IdempotentRequest
from webapp.partner_api.problems import Problem

KEPT_FOR = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"


def request_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def stored_answer(session: AsyncSession, partner_id: int, key: str, digest: str) -> Response[bytes] | None:
    """The first answer to this key, if it was for the same request; a 409 problem if for another; else None."""
    query = select(IdempotentRequest).where(IdempotentRequest.partner_id == partner_id, IdempotentRequest.key == key)
    stored = (await session.exec(query)).first()
    if stored is None or in_utc(stored.created_at) < utcnow() - KEPT_FOR:
        return None
    if stored.request_hash != digest:
        raise Problem("idempotency_conflict", "this Idempotency-Key was first used with another request body")
    return Response(
        stored.response.encode(),
        status_code=stored.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


def remember(session: AsyncSession, partner_id: int, key: str, digest: str, status_code: int, response: bytes) -> None:
    session.add(
        IdempotentRequest(
            partner_id=partner_id, key=key, request_hash=digest, status_code=status_code, response=response.decode()
        )
    )


async def forget_old_answers(db_sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """The clean-up: answers older than `KEPT_FOR` are deleted (their keys may be used again)."""
    async with db_sessionmaker() as session, session.begin():
        old = delete(IdempotentRequest).where(IdempotentRequest.created_at < utcnow() - KEPT_FOR)  # type: ignore[arg-type]
        return int((await session.exec(old)).rowcount or 0)  # type: ignore[call-overload]
