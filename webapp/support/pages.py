"""What every support page shares: the console's settings in each page, the order looked up, reasons and refusals."""

from typing import Any

from litestar import Response
from litestar.exceptions import NotFoundException
from litestar.response import Template
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.auth.guards import SignedInRequest
from webapp.config import Settings
from webapp.i18n import N_, request_locale, translate
from webapp.logs import bind_order
from webapp.orders.models import Order
from webapp.support.masking import mask_account, mask_email, mask_name
from webapp.support.service import order_by_external_id

MAX_REASON_CHARS = 500
PERSONAL_FIELDS = {
    "account": N_("account number"),
    "name": N_("recipient's name"),
    "email": N_("email address"),
}
"""What an agent may reveal, one field at a time (each reveal is audited on its own)."""


def console_page(template: str, settings: Settings, context: dict[str, Any], **response: Any) -> Template:
    """A support page: its dates in the console's time zone (`rendering.py::timezone_of`)."""
    return Template(template, context={**context, "timezone": settings.console_timezone}, **response)


def personal_data(order: Order, *, revealed: frozenset[str] = frozenset()) -> dict[str, str]:
    """What the page shows of the customer: each field masked unless revealed (for that one view) with a reason."""
    clear = {"email": order.user_email, "account": order.account_number, "name": order.recipient_name}
    masked = {
        "email": mask_email(order.user_email),
        "account": mask_account(order.account_number),
        "name": mask_name(order.recipient_name),
    }
    return {field: clear[field] if field in revealed else masked[field] for field in clear}


async def found(session: AsyncSession, order_id: str) -> Order:
    order = await order_by_external_id(session, order_id)
    if order is None:
        raise NotFoundException()
    bind_order(order.external_order_id)
    return order


def refusal(request: SignedInRequest, message: str, status_code: int = 422) -> Response[str]:
    """A refusal in the agent's language, as plain text (the export's progress script shows it as it is)."""
    return Response(translate(request_locale(request), message), status_code=status_code, media_type="text/plain")


def reason_of(data: dict[str, str], name: str = "reason", limit: int = MAX_REASON_CHARS) -> str:
    return " ".join(str(data.get(name, "")).split())[:limit]


def back_within_support(target: str, fallback: str) -> str:
    """Where a form sends the agent back: a path of the console only (never another site)."""
    return target if target.startswith("/support") and "//" not in target and "\\" not in target else fallback
