"""What a partner hears about an order, by webhook and from the embedded page alike: one rule for both."""

from webapp.orders.statuses import status_info


def event_type(status: str, *, first: bool) -> str:
    """One event per status an order reaches.

    `order.completed` or `order.failed` when it is final, `order.created` for its first status after creation
    (`first`), `order.status` otherwise.
    """
    info = status_info(status)
    if info.final:
        return "order.completed" if info.succeeded else "order.failed"
    return "order.created" if first else "order.status"
