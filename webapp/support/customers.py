"""One customer as support sees them: their account, every order (and partner), every email about them."""

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.models import User
from webapp.embed.models import Partner
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order

ORDERS_SHOWN = 200


@dataclass(frozen=True)
class CustomerRecord:
    customer: User
    orders: list[Order]
    """Newest first, at most `ORDERS_SHOWN`."""
    emails: list[EmailMessage]
    """About those orders, newest first."""
    partners: dict[int, Partner]
    """The partners whose pages placed any of the orders, by id."""

    @property
    def orders_by_id(self) -> dict[int | None, Order]:
        return {order.id: order for order in self.orders}


async def customer_record(session: AsyncSession, user_id: int) -> CustomerRecord | None:
    customer = await session.get(User, user_id)
    if customer is None:
        return None
    newest_first = col(Order.created_at).desc(), col(Order.id).desc()
    orders = list(
        await session.exec(select(Order).where(Order.user_id == user_id).order_by(*newest_first).limit(ORDERS_SHOWN))
    )
    order_ids = [order.id for order in orders]
    emails = select(EmailMessage).where(col(EmailMessage.order_id).in_(order_ids)).order_by(col(EmailMessage.id).desc())
    partner_ids = {order.partner_id for order in orders if order.partner_id is not None}
    partners = select(Partner).where(col(Partner.id).in_(partner_ids))
    return CustomerRecord(
        customer,
        orders,
        list(await session.exec(emails)) if order_ids else [],
        {partner.id or 0: partner for partner in await session.exec(partners)} if partner_ids else {},
    )
