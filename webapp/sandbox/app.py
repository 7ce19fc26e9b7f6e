"""`create_sandbox_app(settings)`: the Alix Pay endpoints, a small admin API for faults, and a page for people."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.logging.config import LoggingConfig
from litestar.params import Body, FromPath, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from pydantic import ValidationError
from sqlmodel import col, select

from webapp.alixpay.crypto import Signer, Verifier
from webapp.db import make_engine, make_sessionmaker
from webapp.rendering import TEMPLATES_DIR
from webapp.sandbox import contract
from webapp.sandbox.config import SandboxSettings
from webapp.sandbox.dialects import chosen_dialect, chosen_error_shape, error_answer, order_fields, success_body
from webapp.sandbox.engine import SandboxEngine, request_fingerprint
from webapp.sandbox.faults import Faults
from webapp.sandbox.store import Delivery, DeliveryAttempt, SandboxOrder, StatusEvent, add_new_columns, metadata
from webapp.security_headers import add_security_headers
from webapp.templating import make_environment

Engine: TypeAlias = NamedDependency[SandboxEngine]
Config: TypeAlias = NamedDependency[SandboxSettings]
PartnerVerifier: TypeAlias = NamedDependency[Verifier]


@dataclass(frozen=True)
class Answering:
    """How this request is answered: its language, dialect and error shape (settings, then request headers)."""

    lang: str | None
    dialect: str
    error_shape: str

    @classmethod
    def of(cls, request: Request, settings: SandboxSettings) -> "Answering":
        return cls(
            request.headers.get("lang"),
            chosen_dialect(request.headers, settings.dialect),
            chosen_error_shape(request.headers, settings.error_shape),
        )

    def ok(self, data: dict[str, Any]) -> Response[dict[str, Any]]:
        body = success_body(order_fields(data, self.dialect), self.dialect, contract.message("ok", self.lang))
        return Response(body, status_code=200)

    def refuse(self, key: str, status_code: int = 400, **values: object) -> Response[dict[str, Any]]:
        message = contract.message(key, self.lang, **values)
        status, body = error_answer(self.error_shape, status_code, message, contract.ERROR_CODES[key])
        return Response(body, status_code=status)


async def read_body(request: Request) -> dict[str, Any] | None:
    """The JSON object of the body (None when the body is not one)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def authenticate(body: dict[str, Any], signed_string: str, settings: SandboxSettings, verifier: Verifier) -> str | None:
    """The message key of the first authentication failure, or None."""
    if body["partnerCode"] != settings.partner_code:
        return "unknown_partner"
    if not verifier.verify(signed_string, str(body["signature"])):
        return "bad_signature"
    return None


def cashout_refusal(body: dict[str, Any] | None, settings: SandboxSettings) -> tuple[str, dict[str, object]] | None:
    """What the seed page documents, in order: a JSON body, required fields, the signature, then the values."""
    if body is None:
        return "bad_json", {}
    if missing := contract.missing_field(body, contract.CASHOUT_REQUIRED):
        return "missing_field", {"field": missing}
    if "extendInfo" in body and not isinstance(body["extendInfo"], dict):
        return "missing_field", {"field": "extendInfo"}
    try:
        contract.cashout_signed_string(body, settings.secret_key.get_secret_value())
    except (TypeError, ValueError):
        return "amount", {"minimum": f"{settings.min_amount:,}"}
    return None


@post("/api/v2/orders/create-cashout", name="sandbox.create_cashout")
async def create_cashout(
    request: Request, sandbox: Engine, settings: Config, partner_verifier: PartnerVerifier
) -> Response[dict[str, Any]]:
    answering = Answering.of(request, settings)
    if answering.lang is not None and answering.lang not in contract.LANGUAGES:
        return answering.refuse("lang")
    body = await read_body(request)
    if refusal := cashout_refusal(body, settings):
        key, values = refusal
        return answering.refuse(key, **values)
    assert body is not None  # noqa: S101 (cashout_refusal refused every other case)
    signed = contract.cashout_signed_string(body, settings.secret_key.get_secret_value())
    if failure := authenticate(body, signed, settings, partner_verifier):
        return answering.refuse(failure)
    if violation := contract.cashout_rule_violation(body, settings.min_amount):
        key, values = violation
        return answering.refuse(key, **values)
    async with sandbox.sessionmaker() as session:
        global_faults = await sandbox.global_faults(session)
    if global_faults.strict_fields and (violation := contract.strict_rule_violation(body)):
        key, values = violation
        return answering.refuse(key, **values)

    async with sandbox.sessionmaker() as session, session.begin():
        existing = await session.get(SandboxOrder, body["externalOrderId"])
        if existing is not None:
            if existing.request_fingerprint != request_fingerprint(body):
                return answering.refuse("conflict", status_code=409)
            order = existing
        else:
            order = await sandbox.create_order(session, body, answering.dialect)
        faults = Faults.model_validate(order.faults)
        data = sandbox.order_object(order, faults=faults, for_ipn=False)
    if existing is None and faults.create_response == "error_500":
        return answering.refuse("internal", status_code=500)
    if existing is None and faults.create_response == "hang":
        await asyncio.sleep(faults.hang_seconds)
    return answering.ok(data)


@post("/api/v2/orders/details", name="sandbox.details")
async def details(
    request: Request, sandbox: Engine, settings: Config, partner_verifier: PartnerVerifier
) -> Response[dict[str, Any]]:
    answering = Answering.of(request, settings)
    body = await read_body(request)
    if body is None:
        return answering.refuse("bad_json")
    if missing := contract.missing_field(body, contract.DETAILS_REQUIRED):
        return answering.refuse("missing_field", field=missing)
    signed = contract.details_signed_string(body, settings.secret_key.get_secret_value())
    if failure := authenticate(body, signed, settings, partner_verifier):
        return answering.refuse(failure)
    async with sandbox.sessionmaker() as session:
        order = await session.get(SandboxOrder, body["externalOrderId"])
    if order is None:
        return answering.refuse("not_found", status_code=404)
    faults = Faults.model_validate(order.faults)
    if faults.details_response == "error_500":
        return answering.refuse("internal", status_code=500)
    return answering.ok(sandbox.order_object(order, faults=faults, for_ipn=False))


async def order_report(sandbox: SandboxEngine, order: SandboxOrder) -> dict[str, Any]:
    async with sandbox.sessionmaker() as session:
        events = (
            await session.exec(
                select(StatusEvent)
                .where(StatusEvent.external_order_id == order.external_order_id)
                .order_by(col(StatusEvent.id))
            )
        ).all()
        deliveries = (
            await session.exec(
                select(Delivery).where(Delivery.external_order_id == order.external_order_id).order_by(col(Delivery.id))
            )
        ).all()
        attempts = (
            await session.exec(
                select(DeliveryAttempt)
                .where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries]))
                .order_by(col(DeliveryAttempt.id))
            )
        ).all()
    return {
        "externalOrderId": order.external_order_id,
        "status": order.status,
        "fiatAmount": order.fiat_amount,
        "plan": order.plan,
        "faults": order.faults,
        "dialect": order.dialect,
        "createdAt": order.created_at.isoformat(),
        "expiresAt": order.expires_at.isoformat(),
        "request": {key: value for key, value in order.request.items() if key not in ("signature", "webhookSecretKey")},
        "history": [{"status": e.status, "at": e.at.isoformat(), "reason": e.reason} for e in events],
        "deliveries": [
            {
                "id": d.id,
                "status": d.status,
                "state": d.state,
                "attempts": [
                    {
                        "at": a.at.isoformat(),
                        "httpStatus": a.http_status,
                        "latencyMs": round(a.latency_ms, 1),
                        "error": a.error,
                    }
                    for a in attempts
                    if a.delivery_id == d.id
                ],
                "body": json.loads(d.body),
            }
            for d in deliveries
        ],
    }


async def all_orders(sandbox: SandboxEngine) -> list[SandboxOrder]:
    async with sandbox.sessionmaker() as session:
        return list((await session.exec(select(SandboxOrder).order_by(col(SandboxOrder.created_at).desc()))).all())


@get("/admin/orders", name="sandbox.admin.orders")
async def admin_orders(sandbox: Engine) -> list[dict[str, Any]]:
    return [await order_report(sandbox, order) for order in await all_orders(sandbox)]


@get("/admin/orders/{external_order_id:str}", name="sandbox.admin.order")
async def admin_order(sandbox: Engine, external_order_id: FromPath[str]) -> dict[str, Any]:
    async with sandbox.sessionmaker() as session:
        order = await session.get(SandboxOrder, external_order_id)
    if order is None:
        raise NotFoundException("no such order")
    return await order_report(sandbox, order)


def _after_action(request: Request, report: dict[str, Any]) -> Response[Any]:
    """A browser form gets sent back to the page; a script gets the order as JSON."""
    if "text/html" in request.headers.get("accept", ""):
        return Redirect("/", status_code=303)
    return Response(report)


@post("/admin/orders/{external_order_id:str}/{action:str}", name="sandbox.admin.action", status_code=200)
async def admin_action(
    request: Request, sandbox: Engine, external_order_id: FromPath[str], action: FromPath[str]
) -> Response[Any]:
    actions = {"advance": sandbox.advance, "fail": sandbox.fail, "replay": sandbox.replay}
    if action not in actions:
        raise NotFoundException("unknown action")
    order = await actions[action](external_order_id)
    if order is None:
        raise NotFoundException("no such order")
    return _after_action(request, await order_report(sandbox, order))


@get("/admin/faults", name="sandbox.admin.faults")
async def get_faults(sandbox: Engine) -> dict[str, Any]:
    async with sandbox.sessionmaker() as session:
        return (await sandbox.global_faults(session)).model_dump()


@put("/admin/faults", name="sandbox.admin.set_faults")
async def set_faults(sandbox: Engine, data: Annotated[Faults, Body()]) -> dict[str, Any]:
    await sandbox.set_global_faults(data)
    return data.model_dump()


@post("/admin/faults", name="sandbox.admin.faults_form", status_code=303)
async def set_faults_from_form(sandbox: Engine, data: URLEncodedBody[dict[str, str]]) -> Redirect:
    """The page's fault form: checkboxes and numbers in, the same `Faults` as the JSON API."""
    flags = ("out_of_order", "corrupt_signature", "wrong_key", "drop", "strict_fields")
    try:
        faults = Faults(
            duplicate=int(data.get("duplicate") or 1),
            delay_seconds=float(data.get("delay_seconds") or 0),
            create_response=data.get("create_response") or "normal",  # type: ignore[arg-type]
            answer_signature=data.get("answer_signature") or "good",  # type: ignore[arg-type]
            hang_seconds=float(data.get("hang_seconds") or 30),
            amount_drift=int(data.get("amount_drift") or 0),
            **{flag: flag in data for flag in flags},
        )
    except (ValueError, ValidationError) as exc:
        raise ValidationException("invalid fault settings") from exc
    await sandbox.set_global_faults(faults)
    return Redirect("/", status_code=303)


@put("/admin/orders/{external_order_id:str}/faults", name="sandbox.admin.set_order_faults")
async def set_order_faults(sandbox: Engine, external_order_id: str, data: Annotated[Faults, Body()]) -> dict[str, Any]:
    if await sandbox.set_order_faults(external_order_id, data) is None:
        raise NotFoundException("no such order")
    return data.model_dump()


@get("/", name="sandbox.index")
async def index(sandbox: Engine, settings: Config) -> Template:
    reports = [await order_report(sandbox, order) for order in await all_orders(sandbox)]
    async with sandbox.sessionmaker() as session:
        faults = await sandbox.global_faults(session)
    return Template(
        template_name="sandbox/index.html", context={"orders": reports, "settings": settings, "faults": faults}
    )


@get("/healthz", name="sandbox.health")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_sandbox_app(
    settings: SandboxSettings | None = None, *, stranger_key: rsa.RSAPrivateKey | None = None
) -> Litestar:
    settings = settings or SandboxSettings()
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    signer = Signer.from_file(settings.private_key_file)
    stranger = Signer(stranger_key or rsa.generate_private_key(public_exponent=65537, key_size=2048))
    partner_verifier = Verifier.from_files([settings.partner_public_key_file])
    http = httpx.AsyncClient()
    sandbox = SandboxEngine(settings, sessionmaker, signer, stranger, http)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.run_sync(add_new_columns)
        try:
            async with sandbox.running():
                yield
        finally:
            await http.aclose()
            await engine.dispose()

    return Litestar(
        route_handlers=[
            create_cashout,
            details,
            admin_orders,
            admin_order,
            admin_action,
            get_faults,
            set_faults,
            set_faults_from_form,
            set_order_faults,
            index,
            healthz,
            create_static_files_router(path="/static", directories=[TEMPLATES_DIR.parent / "static"]),
        ],
        dependencies={
            "sandbox": Provide(lambda: sandbox, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "partner_verifier": Provide(lambda: partner_verifier, sync_to_thread=False),
        },
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment())),
        before_send=[add_security_headers],
        lifespan=[lifespan],
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        state=State({"sandbox": sandbox}),
    )
