"""The sandbox's order engine: drives orders through statuses on a schedule and delivers signed IPNs with retries."""

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.crypto import Signer
from webapp.sandbox.config import SandboxSettings
from webapp.sandbox.contract import order_signed_string
from webapp.sandbox.dialects import order_fields
from webapp.sandbox.faults import Faults
from webapp.sandbox.store import Delivery, DeliveryAttempt, GlobalFaults, SandboxOrder, StatusEvent, now

logger = logging.getLogger(__name__)

ORDER_TYPE = "CASH_OUT"
USDT_PRICE_VND = 25_000
DEPOSIT_WALLET = "TSandboxAlixPayDepositWallet0000"
TERMINAL = frozenset({"SUCCESS", "FAIL", "ERROR"})
HAPPY_PATH = ["PAYMENT_COMPLETED", "PROCESSING_TOKEN_TRANSFER", "SUCCESS"]
DESCRIPTIONS = {
    "AWAITING_PAYMENT": "Order created",
    "PAYMENT_COMPLETED": "VND paid out to the recipient's bank",
    "PROCESSING_TOKEN_TRANSFER": "Deducting USDT from the partner wallet",
    "SUCCESS": "Completed",
    "FAIL": "The bank refused the transfer",
    "ERROR": "Processing error",
}


def plan_for(request: dict[str, Any]) -> tuple[list[str], str]:
    """The statuses an order will go through, chosen by the documented magic inputs, and a reason."""
    extend = request.get("extendInfo") or {}
    if str(extend.get("recipientNumber", "")).endswith("0000"):
        return ["FAIL"], "account ends in 0000"
    if int(request["fiatAmount"]) == 66_666:
        return ["ERROR"], "amount 66 666"
    if extend.get("recipientName") == "EXPIRE ME":
        return ["FAIL"], "expired"
    return list(HAPPY_PATH), ""


def request_fingerprint(request: dict[str, Any]) -> str:
    """What makes two creates 'the same order': the whole body but its signature."""
    unsigned = {key: value for key, value in request.items() if key != "signature"}
    return hashlib.sha256(json.dumps(unsigned, sort_keys=True).encode()).hexdigest()


class SandboxEngine:
    def __init__(
        self,
        settings: SandboxSettings,
        db_sessionmaker: async_sessionmaker[AsyncSession],
        signer: Signer,
        stranger: Signer,
        http: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.sessionmaker = db_sessionmaker
        self._signer = signer
        self._stranger = stranger
        self._http = http
        self._secret_key = settings.secret_key.get_secret_value()

    def order_object(
        self, order: SandboxOrder, *, faults: Faults | None = None, for_ipn: bool = True
    ) -> dict[str, Any]:
        """The order as Alix Pay describes it, signed (or mis-signed, when a fault asks for it)."""
        faults = faults or Faults()
        extend = order.request.get("extendInfo") or {}
        paid = order.status not in ("AWAITING_PAYMENT", "FAIL", "ERROR")
        data: dict[str, Any] = {
            "externalOrderId": order.external_order_id,
            "type": ORDER_TYPE,
            "fiatAmount": order.fiat_amount + faults.amount_drift,
            "paidAmount": order.fiat_amount if paid else 0,
            "tokenTransfer": {
                "currency": "USDT",
                "network": "TRC20",
                "price": USDT_PRICE_VND,
                "amount": round(order.fiat_amount / USDT_PRICE_VND, 6),
                "walletAddress": DEPOSIT_WALLET,
                "txHash": order.tx_hash,
            },
            "bankTransfer": {
                "bankAccountName": extend.get("recipientName", ""),
                "bankAccountNumber": extend.get("recipientNumber", ""),
                "bankName": extend.get("recipientBankCode", ""),
                "contentPayment": extend.get("transferContent", ""),
                "totalPayment": order.fiat_amount,
                "qrUrl": "",
            },
            "fees": {"systemFee": 0.5, "processingFee": 0.2},
            "status": order.status,
            "description": order.description or DESCRIPTIONS.get(order.status, ""),
            "createdAt": order.created_at.isoformat(),
            "expiresAt": order.expires_at.isoformat(),
        }
        wrong_key = faults.wrong_key if for_ipn else faults.answer_signature == "wrong_key"
        corrupt = faults.corrupt_signature if for_ipn else faults.answer_signature == "corrupt"
        signer = self._stranger if wrong_key else self._signer
        signature = signer.sign(order_signed_string(data, self._signing_secret(order, for_ipn=for_ipn)))
        if corrupt:
            signature = ("B" if signature[0] == "A" else "A") + signature[1:]
        data["signature"] = signature
        return data

    def ipn_body(self, order: SandboxOrder, faults: Faults) -> bytes:
        """An IPN in the dialect the order was created in."""
        return json.dumps(order_fields(self.order_object(order, faults=faults), order.dialect)).encode()

    def _signing_secret(self, order: SandboxOrder, *, for_ipn: bool) -> str:
        """Answers end with `secretKey`; IPNs with it or the order's `webhookSecretKey`, as configured."""
        if for_ipn and self.settings.ipn_secret == "webhook_secret_key":  # noqa: S105 (a choice, not a secret)
            return str(order.request.get("webhookSecretKey", ""))
        return self._secret_key

    async def global_faults(self, session: AsyncSession) -> Faults:
        row = await session.get(GlobalFaults, 1)
        return Faults.model_validate(row.faults) if row else Faults()

    async def set_global_faults(self, faults: Faults) -> None:
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(GlobalFaults, 1)
            if row is None:
                session.add(GlobalFaults(id=1, faults=faults.model_dump()))
            else:
                row.faults = faults.model_dump()

    async def create_order(self, session: AsyncSession, request: dict[str, Any], dialect: str) -> SandboxOrder:
        """Store a new order in AWAITING_PAYMENT and queue its first IPN; the caller commits."""
        plan, reason = plan_for(request)
        created = now()
        expires_at = created + timedelta(seconds=self.settings.expiry_seconds)
        order = SandboxOrder(
            external_order_id=request["externalOrderId"],
            partner_code=request["partnerCode"],
            request=request,
            request_fingerprint=request_fingerprint(request),
            fiat_amount=int(request["fiatAmount"]),
            status="AWAITING_PAYMENT",
            plan=plan,
            faults=(await self.global_faults(session)).model_dump(),
            dialect=dialect,
            created_at=created,
            expires_at=expires_at,
            next_step_at=expires_at if reason == "expired" else created + timedelta(seconds=self.settings.speed),
        )
        session.add(order)
        await session.flush()
        await self._record_status(session, order, "created")
        return order

    async def _record_status(self, session: AsyncSession, order: SandboxOrder, reason: str) -> None:
        session.add(StatusEvent(external_order_id=order.external_order_id, status=order.status, reason=reason))
        faults = Faults.model_validate(order.faults)
        body = self.ipn_body(order, faults)
        state = "dropped" if faults.drop else "held" if faults.out_of_order else "pending"
        due = now() + timedelta(seconds=faults.delay_seconds)
        for _ in range(faults.duplicate):
            delivery = Delivery(external_order_id=order.external_order_id, status=order.status, body=body, state=state)
            delivery.next_attempt_at = due if state == "pending" else None
            session.add(delivery)
        if order.status in TERMINAL and faults.out_of_order:
            await session.flush()
            await self._release_held_newest_first(session, order, due)

    async def _release_held_newest_first(self, session: AsyncSession, order: SandboxOrder, due: datetime) -> None:
        held = (
            await session.exec(
                select(Delivery)
                .where(Delivery.external_order_id == order.external_order_id, Delivery.state == "held")
                .order_by(col(Delivery.id).desc())
            )
        ).all()
        for position, delivery in enumerate(held):
            delivery.state = "pending"
            delivery.next_attempt_at = due + timedelta(milliseconds=position)

    async def move_to(self, session: AsyncSession, order: SandboxOrder, status: str, reason: str) -> None:
        order.status = status
        order.description = DESCRIPTIONS[status] if reason != "expired" else "Expired before payment"
        if status == "SUCCESS":
            order.tx_hash = secrets.token_hex(32)
        if status in TERMINAL:
            order.plan, order.next_step_at = [], None
        else:
            order.plan = order.plan[1:] if order.plan and order.plan[0] == status else order.plan
            order.next_step_at = now() + timedelta(seconds=self.settings.speed)
        await self._record_status(session, order, reason)

    async def advance(self, external_order_id: str) -> SandboxOrder | None:
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(SandboxOrder, external_order_id)
            if order is not None and order.plan:
                await self.move_to(session, order, order.plan[0], "advanced by hand")
            return order

    async def fail(self, external_order_id: str) -> SandboxOrder | None:
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(SandboxOrder, external_order_id)
            if order is not None and order.status not in TERMINAL:
                await self.move_to(session, order, "FAIL", "failed by hand")
            return order

    async def replay(self, external_order_id: str) -> SandboxOrder | None:
        """Send the current status's IPN again (as Alix Pay would on a manual resend)."""
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(SandboxOrder, external_order_id)
            if order is not None:
                body = self.ipn_body(order, Faults.model_validate(order.faults))
                session.add(
                    Delivery(external_order_id=external_order_id, status=order.status, body=body, next_attempt_at=now())
                )
            return order

    async def set_order_faults(self, external_order_id: str, faults: Faults) -> SandboxOrder | None:
        async with self.sessionmaker() as session, session.begin():
            order = await session.get(SandboxOrder, external_order_id)
            if order is not None:
                order.faults = faults.model_dump()
            return order

    async def step_due_orders(self) -> None:
        async with self.sessionmaker() as session, session.begin():
            due = (
                await session.exec(
                    select(SandboxOrder)
                    .where(col(SandboxOrder.next_step_at) <= now())
                    .order_by(SandboxOrder.created_at)
                )
            ).all()
            for order in due:
                if order.plan:
                    _, reason = plan_for(order.request)
                    await self.move_to(session, order, order.plan[0], reason or "on schedule")

    async def deliver_due(self) -> None:
        async with self.sessionmaker() as session:
            due = (
                await session.exec(
                    select(Delivery)
                    .where(Delivery.state == "pending", col(Delivery.next_attempt_at) <= now())
                    .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
                )
            ).all()
        for delivery in due:
            await self.deliver(delivery)

    async def deliver(self, delivery: Delivery) -> None:
        started = time.perf_counter()
        http_status, error = None, ""
        try:
            response = await self._http.post(
                self.settings.ipn_url,
                content=delivery.body,
                headers={
                    "content-type": "application/json",
                    "user-agent": "AlixPay-Sandbox/1",
                    "date": format_datetime(now(), usegmt=True),  # when sent: the app's IPN delay chart reads it
                },
                timeout=self.settings.ipn_timeout_seconds,
            )
            http_status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency_ms = (time.perf_counter() - started) * 1000
        delivered = http_status is not None and 200 <= http_status < 300
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(Delivery, delivery.id)
            if row is None:
                return
            row.attempts += 1
            session.add(
                DeliveryAttempt(delivery_id=row.id, http_status=http_status, latency_ms=latency_ms, error=error)
            )
            if delivered:
                row.state, row.next_attempt_at = "delivered", None
            elif row.attempts >= self.settings.max_attempts:
                row.state, row.next_attempt_at = "failed", None
            else:
                backoff = self.settings.retry_base_seconds * 2 ** (row.attempts - 1)
                row.next_attempt_at = now() + timedelta(seconds=backoff)
        logger.info(
            "IPN delivery %s (%s %s) attempt %s: status=%s latency=%.0fms %s",
            delivery.id,
            delivery.external_order_id,
            delivery.status,
            row.attempts,
            http_status,
            latency_ms,
            error,
        )

    async def run(self) -> None:
        """Step orders and deliver IPNs until cancelled; a failing tick is logged, never fatal."""
        while True:
            try:
                await self.step_due_orders()
                await self.deliver_due()
            except Exception:
                logger.exception("sandbox engine tick failed")
            await asyncio.sleep(self.settings.tick_seconds)

    @contextlib.asynccontextmanager
    async def running(self):  # type: ignore[no-untyped-def]
        task = asyncio.create_task(self.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
