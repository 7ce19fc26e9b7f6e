"""The schema: every table on `SQLModel.metadata` (for Alembic and tests), and the migrations that build it.

Importing this module registers every table module. `upgrade()` runs Alembic programmatically
(`python -m webapp migrate`, and the dev stack before it starts); `head_revision()` is what a ready database
must be at (`/readyz`).
"""

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from webapp.activity.counts import ActivityCount
from webapp.audit import AuditEntry
from webapp.auth.models import User
from webapp.embed.models import LaunchTicket, LaunchTokenUse, Partner, WebhookAttempt, WebhookEvent
from webapp.ipn.models import IpnReceipt
from webapp.job_board import AppInstance, BackgroundJob
from webapp.notifications.models import EmailMessage
from webapp.operations.alarms import AlarmState
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.recipients import SavedRecipient
from webapp.partner_api.models import IdempotentRequest, PartnerApiKey
from webapp.ratelimit_store import RateLimitWindow
from webapp.sessions import HttpSession
from webapp.support.models import SupportCase, SupportNote

__all__ = [
    "ActivityCount",
    "AlarmState",
    "AppInstance",
    "AuditEntry",
    "BackgroundJob",
    "EmailMessage",
    "HttpSession",
    "IdempotentRequest",
    "IpnReceipt",
    "LaunchTicket",
    "LaunchTokenUse",
    "Order",
    "OrderEvent",
    "OrderTransition",
    "Partner",
    "PartnerApiKey",
    "RateLimitWindow",
    "SavedRecipient",
    "SupportCase",
    "SupportNote",
    "User",
    "WebhookAttempt",
    "WebhookEvent",
]

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration this code ships (what a ready database must be at)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def upgrade(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")
