"""The baselines of the IPN ingest benchmark on the same framework and server, with asyncpg and no batching:
`uvicorn --factory tests.perf.bare_ipn:create_app`.

- *bare* (the default): the least a receiver can do: verify the RSA signature, insert the raw body.
- *applying* (`BARE_APPLY=1`, on our schema with our orders): also the least our data model asks of a status
  change: the receipt committed raw first (with its dedupe key), then in one transaction the order locked, the
  earlier deliveries of the body looked up, the new status written on the order with its transition when it is
  ahead, and the receipt's verdict, decided as ours decides (its dedupe key, its state machine). No subscriber, no
  batching, none of our storage or intake code: what is left between ours and this one is our code, what is left
  between this one and bare is the data model.
"""

import json
import os
from typing import Any

import asyncpg
from litestar import Litestar, Request, Response, get, post

from webapp.alixpay.crypto import Verifier
from webapp.alixpay.signing import order_string
from webapp.ipn.service import SEEN_VERDICTS, IntakeVerdict, dedupe_key
from webapp.orders.state import Verdict, decide, from_provider
from webapp.orders.statuses import OrderStatus


async def apply(connection: asyncpg.Connection, body: bytes, order: dict[str, Any], signed: bool) -> str:
    """Store the receipt, then judge it against its order; the verdict."""
    key = dedupe_key(body)
    receipt_id = await connection.fetchval(
        "INSERT INTO ipn_receipt (received_at, headers, body, body_size, dedupe_key, attempts)"
        " VALUES (now(), '{}', $1, $2, $3, 0) RETURNING id",
        body,
        len(body),
        key,
    )
    async with connection.transaction():
        verdict = IntakeVerdict.BAD_SIGNATURE.value
        if signed:
            verdict = await _judge(connection, order, key)
        await connection.execute(
            "UPDATE ipn_receipt SET verdict = $1, processed_at = now(), external_order_id = $2, provider_status = $3"
            " WHERE id = $4",
            verdict,
            order["externalOrderId"],
            order["status"],
            receipt_id,
        )
    return verdict


async def _judge(connection: asyncpg.Connection, order: dict[str, Any], key: str) -> str:
    row = await connection.fetchrow(
        "SELECT id, status FROM cashout_order WHERE external_order_id = $1 FOR UPDATE", order["externalOrderId"]
    )
    if row is None:
        return IntakeVerdict.UNKNOWN_ORDER.value
    deliveries = await connection.fetch("SELECT verdict FROM ipn_receipt WHERE dedupe_key = $1", key)
    if any(delivery["verdict"] in SEEN_VERDICTS for delivery in deliveries):  # by key alone, as ours
        return Verdict.DUPLICATE.value
    target = from_provider(order["status"])
    if target is None:
        return Verdict.UNKNOWN_STATUS.value
    verdict = decide(OrderStatus(row["status"]), target)
    if verdict is not Verdict.APPLIED:
        return verdict.value
    await connection.execute(
        "UPDATE cashout_order SET status = $1, provider_status = $1, updated_at = now(), last_ipn_at = now()"
        " WHERE id = $2",
        order["status"],
        row["id"],
    )
    await connection.execute(
        "INSERT INTO order_transition (order_id, from_status, to_status, source, at, note)"
        " VALUES ($1, $2, $3, 'ipn', now(), '')",
        row["id"],
        row["status"],
        order["status"],
    )
    return verdict.value


def create_app() -> Litestar:
    verifier = Verifier.from_files([os.environ["BARE_ALIX_PUBLIC_KEY_FILE"]])
    secret, dsn = os.environ["BARE_SECRET_KEY"], os.environ["BARE_DSN"]
    applying = os.environ.get("BARE_APPLY") == "1"
    pool: dict[str, asyncpg.Pool] = {}

    async def start() -> None:
        pool["db"] = await asyncpg.create_pool(dsn, min_size=4, max_size=8)
        async with pool["db"].acquire() as connection:
            await connection.execute("CREATE TABLE IF NOT EXISTS bare_receipt (id serial primary key, body bytea)")

    async def stop() -> None:
        await pool["db"].close()

    @post("/ipn/alixpay", status_code=200)
    async def receive(request: Request) -> Response[dict[str, str]]:
        body = await request.body()
        order = json.loads(body)
        text = order_string(
            external_order_id=order["externalOrderId"],
            order_type=order["type"],
            fiat_amount=order["fiatAmount"],
            status=order["status"],
            secret_key=secret,
        )
        signed = verifier.verify(text, order["signature"])
        if applying:
            async with pool["db"].acquire() as connection:
                verdict = await apply(connection, body, order, signed)
        else:
            verdict = "applied" if signed else "bad_signature"
            await pool["db"].execute("INSERT INTO bare_receipt (body) VALUES ($1)", body)
        return Response({"verdict": verdict}, status_code=400 if verdict == "bad_signature" else 200)

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[receive, healthz], on_startup=[start], on_shutdown=[stop])
