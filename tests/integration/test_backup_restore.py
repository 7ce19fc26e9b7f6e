"""The backup drill of docs/operations.md, exactly: migrate, work, `pg_dump`, restore into a new database, then the
audit chain verifies and the app is ready and serves the restored orders."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from tests.builders import make_order
from tests.conftest import RsaKeys, keyed_settings
from tests.integration.conftest import libpq_url, new_postgres_database
from tests.processes import ROOT
from webapp import audit
from webapp.app import create_app
from webapp.auth.models import User
from webapp.db import make_engine, make_sessionmaker
from webapp.orders.models import Order


def webapp_command(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "webapp", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_a_dump_restored_into_a_new_database_verifies_and_serves(rsa_keys: RsaKeys, tmp_path: Path) -> None:
    (source, drop_source), (target, drop_target) = [await asyncio.to_thread(new_postgres_database) for _ in "st"]
    try:
        assert webapp_command("migrate", database_url=source).returncode == 0
        engine = make_engine(source)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            person = User(issuer="https://idp.example", subject="p", email="person@example.com")
            session.add(person)
            await session.flush()
            session.add_all(make_order(user_id=person.id, email=person.email, status="SUCCESS") for _ in range(3))
        for reason in ("ticket 1", "ticket 2"):
            await audit.append(sessionmaker, actor="support@example.com", action="reveal", reason=reason)
        await engine.dispose()

        dump = tmp_path / "cashout.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", libpq_url(source)], check=True, timeout=120)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={libpq_url(target)}", str(dump)], check=True, timeout=120
        )

        verified = webapp_command("audit", "verify", database_url=target)
        assert verified.returncode == 0 and "audit log intact: 2 rows" in verified.stdout, verified.stderr
        restored = keyed_settings(target, rsa_keys)
        async with AsyncTestClient(app=create_app(restored)) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text  # schema at the newest migration, keys load
        engine = make_engine(target)
        async with make_sessionmaker(engine)() as session:
            orders = (await session.exec(select(Order).order_by(col(Order.id)))).all()
        await engine.dispose()
        assert [order.status for order in orders] == ["SUCCESS"] * 3
    finally:
        await asyncio.to_thread(drop_source)
        await asyncio.to_thread(drop_target)
