"""The sandbox's own order book in its own SQLite file: orders, status history, IPN deliveries and attempts.

Its tables live on a separate registry, so they never appear in the app's metadata or migrations.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, LargeBinary, inspect, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


def now() -> datetime:
    return datetime.now(UTC)


class SandboxModel(SQLModel, registry=registry()):
    pass


class SandboxOrder(SandboxModel, table=True):
    __tablename__ = "sandbox_order"

    external_order_id: str = Field(primary_key=True, max_length=64)
    partner_code: str
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    request_fingerprint: str
    fiat_amount: int
    status: str
    plan: list[str] = Field(sa_column=Column(JSON, nullable=False))
    """Statuses still to come, in order."""
    faults: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dialect: str = "documented"
    """How this order's answers and IPNs are shaped (chosen when it was created)."""
    description: str = ""
    tx_hash: str | None = None
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime
    next_step_at: datetime | None = Field(default=None, index=True)


class StatusEvent(SandboxModel, table=True):
    __tablename__ = "sandbox_status_event"

    id: int | None = Field(default=None, primary_key=True)
    external_order_id: str = Field(foreign_key="sandbox_order.external_order_id", index=True)
    status: str
    at: datetime = Field(default_factory=now)
    reason: str = ""


class Delivery(SandboxModel, table=True):
    """One IPN to send (a duplicated IPN is several deliveries of the same body)."""

    __tablename__ = "sandbox_delivery"

    id: int | None = Field(default=None, primary_key=True)
    external_order_id: str = Field(foreign_key="sandbox_order.external_order_id", index=True)
    status: str
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = "pending"
    """pending | held (out-of-order fault, waits for the terminal status) | delivered | failed | dropped"""
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=now)


class DeliveryAttempt(SandboxModel, table=True):
    __tablename__ = "sandbox_delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="sandbox_delivery.id", index=True)
    at: datetime = Field(default_factory=now)
    http_status: int | None = None
    latency_ms: float
    error: str = ""


class GlobalFaults(SandboxModel, table=True):
    """Faults copied into every order created while they are set (one row, id 1)."""

    __tablename__ = "sandbox_global_faults"

    id: int = Field(default=1, primary_key=True)
    faults: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dialect: str = "documented"
    """How this order's answers and IPNs are shaped (chosen when it was created)."""


metadata = SandboxModel.metadata


def add_new_columns(connection: Connection) -> None:
    """The sandbox keeps no migrations: a database from an older version gets the columns added since."""
    existing = {column["name"] for column in inspect(connection).get_columns("sandbox_order")}
    if "dialect" not in existing:
        connection.execute(text("ALTER TABLE sandbox_order ADD COLUMN dialect VARCHAR DEFAULT 'documented' NOT NULL"))
