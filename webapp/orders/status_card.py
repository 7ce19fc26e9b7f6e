"""What an order's status card shows (`templates/orders/_status.html`), and nothing more.

The card is the page part, the poll answer and the live update at once. The instance that commits a change reads the
changed orders' cards once and publishes them with the live update (`orders/live.py::LivePublisher`); every instance
draws its watchers' fragments from the card it heard, without reading the database. So the card holds only what the
order's owner already sees on that card (no bank details, no names, no email) and stays far below PostgreSQL's
8 000-byte NOTIFY payload.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.orders.statuses import status_info, timeline


def short_reference(external_order_id: str) -> str:
    """The short reference a person reads out or pastes: the id's first 8 characters (support finds it)."""
    return external_order_id[:8].upper()


@dataclass(frozen=True, slots=True)
class StatusCard:
    external_order_id: str
    status: str
    fiat_amount: int
    rejection_message: str | None
    expires_at: datetime | None
    reached: tuple[tuple[str, datetime], ...]
    """Every transition, oldest first: the status entered, and when."""
    flagged: tuple[datetime, ...]
    """When notifications that did not match the order arrived (not applied; support was alerted)."""

    @property
    def reference(self) -> str:
        return short_reference(self.external_order_id)

    @property
    def version(self) -> int:
        """Grows with every change the card shows: of two cards of one order, the higher version is the newer.

        Transitions and flags are only ever added.
        """
        return len(self.reached) + len(self.flagged)

    def wire(self) -> dict[str, Any]:
        """The card as JSON values, for a live update's notification."""
        return {
            "id": self.external_order_id,
            "status": self.status,
            "amount": self.fiat_amount,
            "rejection": self.rejection_message,
            "expires": self.expires_at.isoformat() if self.expires_at else None,
            "reached": [[status, at.isoformat()] for status, at in self.reached],
            "flagged": [at.isoformat() for at in self.flagged],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> "StatusCard":
        """The card `wire()` made; raises KeyError, TypeError or ValueError for anything else."""
        expires = data["expires"]
        return cls(
            external_order_id=str(data["id"]),
            status=str(data["status"]),
            fiat_amount=int(data["amount"]),
            rejection_message=None if data["rejection"] is None else str(data["rejection"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            reached=tuple((str(status), datetime.fromisoformat(at)) for status, at in data["reached"]),
            flagged=tuple(datetime.fromisoformat(at) for at in data["flagged"]),
        )


def card_context(card: StatusCard) -> dict[str, Any]:
    """What `_status.html` needs: the card, the status table's words for it, and the steps of its timeline."""
    info = status_info(card.status)
    final_at = card.reached[-1][1] if card.reached and info.final else None
    return {
        "card": card,
        "status": info,
        "final": info.final,
        "steps": timeline(card.status, dict(card.reached), final_at=final_at),
    }
