"""Imports every table module so `SQLModel.metadata` is complete (for Alembic and test `create_all`)."""

from webapp.auth.models import User
from webapp.embed.models import LaunchTokenUse, Partner, WebhookAttempt, WebhookEvent
from webapp.ipn.models import IpnReceipt
from webapp.notifications.models import EmailMessage
from webapp.operations.alarms import AlarmState
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.sessions import HttpSession, RateLimitCounter
from webapp.support.audit import AuditEntry

__all__ = [
    "AlarmState",
    "AuditEntry",
    "EmailMessage",
    "HttpSession",
    "IpnReceipt",
    "LaunchTokenUse",
    "Order",
    "OrderEvent",
    "OrderTransition",
    "Partner",
    "RateLimitCounter",
    "User",
    "WebhookAttempt",
    "WebhookEvent",
]
