"""What the owner of status changes tells its subscribers, and the narrow door through which they write.

The owner (`transitions.py`) knows no feature: the composition root (`services.py`) registers who hears a change.
A `StatusSubscriber` runs inside the unit's transaction for every applied transition and writes its own rows
(an outbox row) through `UnitWriter`, so they exist exactly when the change does. A `CommitSubscriber` hears,
after the commit only, which orders a unit changed (live updates), so nobody sees a change that was rolled back.
"""

from collections.abc import Awaitable, Callable, Set
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Executable

from webapp.orders.models import Order
from webapp.orders.statuses import PAID_OUT_STATUSES, OrderStatus
from webapp.sql_runner import SqlRunner


@dataclass(frozen=True)
class StatusChanged:
    order: Order
    """As it was before the change (its `status` is still `previous`)."""
    previous: str
    status: str
    source: str
    """create | ipn | poll | manual"""
    reported_after: timedelta | None = None
    """An IPN's: how long it took from Alix Pay sending it to our storing it, when it said (`ipn/service.py`)."""
    reported: dict[str, Any] | None = None
    """Alix Pay's order object that brought the change, as received (the order's own is still the previous one)."""

    @property
    def pays_out(self) -> bool:
        """Whether this change is the one that first pays the cash-out out (a later paid-out status is not)."""
        return OrderStatus(self.status) in PAID_OUT_STATUSES and OrderStatus(self.previous) not in PAID_OUT_STATUSES


class UnitWriter(Protocol):
    """A subscriber reads through the unit's runner and adds rows that are written just before its commit."""

    sql: SqlRunner

    def add(self, statement: Executable, values: dict[str, Any]) -> None: ...


StatusSubscriber = Callable[[StatusChanged, UnitWriter], Awaitable[None]]
CommitSubscriber = Callable[[Set[int]], None]
"""Called with the ids of the orders a committed unit changed."""
