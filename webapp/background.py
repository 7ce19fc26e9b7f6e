"""The app's one background loop.

Each round finishes interrupted IPN receipts, reconciles quiet or unknown orders and drops expired sessions.
Each round survives any error (a database that is down today is up tomorrow), so start-up never depends on it.
"""

import asyncio
import logging
from datetime import timedelta

from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.ipn.service import process_pending
from webapp.orders.reconcile import reconcile_once
from webapp.sessions import DatabaseStore

logger = logging.getLogger(__name__)


async def run_background(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    alixpay: AlixPayClient,
    channels: ChannelsPlugin,
    session_store: DatabaseStore,
    interval: float,
    silence: timedelta,
    replay_grace: timedelta,
) -> None:
    while True:
        try:
            await process_pending(db_sessionmaker, alixpay=alixpay, channels=channels, grace=replay_grace)
            await reconcile_once(db_sessionmaker, alixpay=alixpay, channels=channels, silence=silence)
            await session_store.delete_expired()
        except Exception:
            logger.exception("background round failed; trying again in %s s", interval)
        await asyncio.sleep(interval)
