"""Internal notes on an order or a customer: written by agents for agents, audited, never shown to the customer."""

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.support.models import SupportNote
from webapp.support.phrases import NOTE_ON_CUSTOMER, NOTE_ON_ORDER

MAX_NOTE_CHARS = 2000


async def add_note(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    agent: str,
    body: str,
    order_id: int | None = None,
    user_id: int | None = None,
) -> SupportNote:
    """Keep the note, then write it to the audit log (the log holds what was written, by whom, when)."""
    note = SupportNote(order_id=order_id, user_id=user_id, author=agent, body=body[:MAX_NOTE_CHARS])
    async with db_sessionmaker() as session, session.begin():
        session.add(note)
    about = NOTE_ON_ORDER(order=order_id) if order_id is not None else NOTE_ON_CUSTOMER(customer=user_id)
    await audit.append(
        db_sessionmaker,
        actor=agent,
        action="note_added",
        order_id=order_id,
        reason=note.body,
        detail=about,
    )
    return note


async def notes_on(
    session: AsyncSession, *, order_id: int | None = None, user_id: int | None = None
) -> list[SupportNote]:
    """The notes on one order, or on one customer, newest first."""
    statement = select(SupportNote)
    if order_id is not None:
        statement = statement.where(SupportNote.order_id == order_id)
    else:
        statement = statement.where(SupportNote.user_id == user_id)
    return list((await session.exec(statement.order_by(col(SupportNote.id).desc()))).all())
