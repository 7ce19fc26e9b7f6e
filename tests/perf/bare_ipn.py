"""The baseline of the IPN ingest benchmark: the least a receiver can do (verify the RSA signature, insert the raw
body with asyncpg) on the same framework and server. `uvicorn --factory tests.perf.bare_ipn:create_app`."""

import json
import os

import asyncpg
from litestar import Litestar, Request, Response, get, post

from webapp.alixpay.crypto import Verifier
from webapp.alixpay.signing import order_string


def create_app() -> Litestar:
    verifier = Verifier.from_files([os.environ["BARE_ALIX_PUBLIC_KEY_FILE"]])
    secret, dsn = os.environ["BARE_SECRET_KEY"], os.environ["BARE_DSN"]
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
        verdict = "applied" if verifier.verify(text, order["signature"]) else "bad_signature"
        await pool["db"].execute("INSERT INTO bare_receipt (body) VALUES ($1)", body)
        return Response({"verdict": verdict}, status_code=200 if verdict == "applied" else 400)

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[receive, healthz], on_startup=[start], on_shutdown=[stop])
