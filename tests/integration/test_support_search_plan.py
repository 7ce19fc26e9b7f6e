"""On 100 000 orders in PostgreSQL, every search key is answered through an index, never a sequential scan."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from tests.conftest import create_schema
from webapp.db import make_engine
from webapp.orders.models import Order
from webapp.support.search import Console, SearchQuery, filtered

ORDERS = 100_000
GENERATE = f"""
INSERT INTO user_account (issuer, subject, email, name, first_login_at, last_login_at)
SELECT 'https://idp', 'u' || n, 'customer' || n || '@example.com', NULL, now(), now()
FROM generate_series(1, 1000) AS n;
INSERT INTO cashout_order (external_order_id, submission_id, user_id, user_email, status, fiat_amount, bank_bin,
    bank_code, bank_name, account_number, account_tail, recipient_name, transfer_content, locale, provider_order,
    provider_tx_hash, provider_content, created_at, updated_at)
SELECT md5(n::text)::uuid::text, 's' || n, 1 + n % 1000, 'customer' || (1 + n % 1000) || '@example.com',
    (ARRAY['SUCCESS', 'FAIL', 'AWAITING_PAYMENT', 'PAYMENT_COMPLETED'])[1 + n % 4], 100000 + n, '970407',
    'TECHCOMBANK', 'Techcombank', lpad(n::text, 12, '0'), right(lpad(n::text, 12, '0'), 4), 'NGUYEN VAN ANH',
    'RUT TIEN ' || upper(substr(md5('c' || n), 1, 8)), 'en', '{{}}', '0x' || md5('h' || n), 'ALIX ' || n,
    now() - n * interval '1 minute', now() - n * interval '1 minute'
FROM generate_series(1, {ORDERS}) AS n;
ANALYZE user_account; ANALYZE cashout_order; ANALYZE order_event;
"""


@pytest.fixture
async def big_database(database_url: str) -> AsyncIterator[str]:
    await create_schema(database_url)
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        for statement in GENERATE.split(";"):
            if statement.strip():
                await connection.execute(text(statement))
    await engine.dispose()
    yield database_url


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_every_search_key_uses_an_index_on_100_000_orders(big_database: str) -> None:
    # what is typed → the index (by name or name prefix) its own interpretation must use; a common email prefix
    # may walk the date index instead: with LIMIT 26 the newest matches come first
    typed = {
        "customer42@example.com": ("ix_cashout_order_user_email",),
        "customer42@": ("ix_cashout_order_user_email_prefix", "ix_cashout_order_created_at"),
        "c4ca4238-a0b9-2382-0dcc-509a6f75849b": ("ix_cashout_order_external_order_id",),
        "c4ca4238": ("ix_cashout_order_external_order_id_prefix",),  # a LIKE: only the pattern index can
        "4242": ("ix_cashout_order_account_tail",),
        "RUT TIEN 7Q2K9MXA": ("ix_cashout_order_transfer_content",),
        "0x0123456789abcdef0123456789abcdef": ("ix_cashout_order_provider_tx_hash",),
        "ALIX 4242": ("ix_cashout_order_provider_content",),
    }
    engine = make_engine(big_database)
    plans = {}
    async with engine.connect() as connection:
        for value in typed:
            statement = (
                filtered(SearchQuery(text=value), console=Console())
                .order_by(col(Order.created_at).desc(), col(Order.id).desc())
                .limit(26)
            )
            sql = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            plans[value] = "\n".join((await connection.execute(text(f"EXPLAIN {sql}"))).scalars())
    await engine.dispose()
    for value, plan in plans.items():
        assert "Seq Scan on cashout_order" not in plan, f"{value}:\n{plan}"
        assert any(f"Scan on {index}" in plan or f"using {index}" in plan for index in typed[value]), (
            f"{value}:\n{plan}"
        )
