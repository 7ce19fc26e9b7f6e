"""`python -m webapp dev|serve|sandbox|mailbox|migrate|i18n|demo-cashout|audit|partners|api-keys|secrets`: the CLI."""

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from webapp.config import DEV_DIR, Settings


def _dev(args: argparse.Namespace) -> int:
    from webapp.dev import stack as devstack
    from webapp.schema import upgrade

    state_dir = Path(args.state_dir)
    database_url = devstack.stack_database_url(state_dir)
    upgrade(database_url)
    services = devstack.embedded_services(
        state_dir,
        app_port=args.app_port or devstack.free_port(),
        sandbox_port=args.sandbox_port or devstack.free_port(),
        idp_port=args.idp_port or devstack.free_port(),
        partner_port=args.partner_port or devstack.free_port(),
        mailbox_port=args.mailbox_port or devstack.free_port(),
        database_url=database_url,
    )
    return devstack.serve_forever(services, state_dir / "stack.json")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from webapp.logs import configure_logging

    if args.no_jobs:
        os.environ["RUN_JOBS"] = "false"  # for this process and its workers (they read the settings anew)
    settings = Settings()
    if args.workers > 1 and settings.database.url.startswith("sqlite"):
        print("--workers needs PostgreSQL: SQLite serves one process (see docs/deploy.md)", file=sys.stderr)  # noqa: T201
        return 2
    level = logging.getLevelNamesMapping()[settings.log_level]
    configure_logging(json=settings.logs_as_json, level=level, access=settings.log_access)
    if args.workers > 1:
        _shared_metrics_directory()
    uvicorn.run(
        "webapp.app:create_served_app",
        factory=True,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        workers=args.workers,
        timeout_graceful_shutdown=args.graceful_timeout,
        log_level=settings.log_level.lower(),
        access_log=settings.log_access,
        log_config=None,  # our handler (configure_logging) formats uvicorn's lines too
    )
    return 0


def _shared_metrics_directory() -> None:
    """Workers keep their metrics in files of one directory, read together at each scrape (`metrics.exported`).

    The operator's `PROMETHEUS_MULTIPROC_DIR`, or one of this `serve`'s own; emptied first (old files would count).
    """
    from webapp.metrics import MULTIPROC_DIR  # this process serves nothing: its own metrics stay in memory

    directory = Path(os.environ.get(MULTIPROC_DIR) or tempfile.mkdtemp(prefix="cashout-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_DIR] = str(directory)  # read by each worker's prometheus_client when it starts


def _sandbox(_args: argparse.Namespace) -> int:
    import uvicorn

    from webapp.sandbox.app import create_sandbox_app
    from webapp.sandbox.config import SandboxSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = SandboxSettings()
    uvicorn.run(create_sandbox_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def _mailbox(_args: argparse.Namespace) -> int:
    import uvicorn

    from webapp.dev.mailbox import MailboxSettings, create_mailbox_app

    settings = MailboxSettings()
    uvicorn.run(create_mailbox_app(settings), host=settings.host, port=settings.http_port, log_level="warning")
    return 0


def _demo_cashout(args: argparse.Namespace) -> int:

    from webapp.dev.demo import create_demo_cashout

    order, sandbox_url = asyncio.run(
        create_demo_cashout(
            Path(args.state_dir) / "stack.json",
            amount=args.amount,
            account_number=args.account,
            recipient_name=args.name,
            email=args.email,
        )
    )
    print(f"Created {order.external_order_id} ({order.status}). Watch it at {sandbox_url}/")  # noqa: T201
    return 0


def _database_url(args: argparse.Namespace) -> str:
    """The app's database (`DATABASE_URL`), or the development stack's of `--state-dir`; said on stderr."""
    if args.state_dir is None:
        url = Settings().database.url
    else:
        from webapp.dev import stack as devstack

        url = devstack.stack_database_url(Path(args.state_dir))
    print(f"database: {make_url(url).render_as_string(hide_password=True)}", file=sys.stderr)  # noqa: T201
    return url


def _migrate(args: argparse.Namespace) -> int:
    from webapp.schema import upgrade

    upgrade(_database_url(args))
    return 0


def _i18n(_args: argparse.Namespace) -> int:
    from webapp.dev.catalogs import update_catalogs

    update_catalogs()
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    """Exit 1 and name the first broken row when the audit log's hash chain does not hold."""
    from webapp.audit import verify_database

    check = asyncio.run(verify_database(_database_url(args)))
    if check.broken_at is None:
        print(f"audit log intact: {check.rows} rows")  # noqa: T201
        return 0
    print(f"audit log broken at row {check.broken_at}: {check.problem}", file=sys.stderr)  # noqa: T201
    return 1


def _partners(args: argparse.Namespace) -> int:
    from webapp.embed.cli import run
    from webapp.embed.partners import PartnerSecrets

    return asyncio.run(run(args, _database_url(args), PartnerSecrets.of(Settings())))


def _api_keys(args: argparse.Namespace) -> int:
    from webapp.partner_api.cli import run

    return asyncio.run(run(args, _database_url(args)))


def _reencrypt(args: argparse.Namespace) -> int:
    from webapp.embed.cli import reencrypt
    from webapp.embed.partners import PartnerSecrets

    return asyncio.run(reencrypt(_database_url(args), PartnerSecrets.of(Settings())))


def _add_stack_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """`dev`, `serve`, `sandbox` and `mailbox`: the processes of the embedded stack, and the app alone."""
    dev = commands.add_parser("dev", help="run the whole embedded stack on loopback")
    dev.add_argument("--app-port", type=int, default=8000, help="0 picks a free port")
    dev.add_argument("--sandbox-port", type=int, default=8001, help="0 picks a free port")
    dev.add_argument("--idp-port", type=int, default=9400, help="0 picks a free port")
    dev.add_argument("--partner-port", type=int, default=8003, help="the example partner's page; 0 picks a free port")
    dev.add_argument("--mailbox-port", type=int, default=8025, help="the development mailbox page; 0 picks a free port")
    dev.add_argument(
        "--state-dir", default=str(DEV_DIR), help="where everything the stack writes lives: databases, keys, mail"
    )
    dev.set_defaults(run=_dev)

    serve = commands.add_parser("serve", help="run the app alone (production)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--no-jobs", action="store_true", help="serve requests only: the background jobs run on other instances"
    )
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=5,
        help="on SIGTERM, live pages are told at once to reconnect elsewhere; seconds to let other requests finish",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxies whose X-Forwarded-* headers are trusted (default: $FORWARDED_ALLOW_IPS, else loopback)",
    )
    serve.set_defaults(run=_serve)

    sandbox = commands.add_parser("sandbox", help="run the local Alix Pay sandbox (SANDBOX_* settings)")
    sandbox.set_defaults(run=_sandbox)

    mail = commands.add_parser("mailbox", help="run the development SMTP sink and its page (MAILBOX_* settings)")
    mail.set_defaults(run=_mailbox)


def _database_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--state-dir", help="use the database of the development stack started with this --state-dir (not DATABASE_URL)"
    )


def _add_tool_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """One-off commands: a demo cash-out, migrations, catalogues, the audit log, partners."""
    demo = commands.add_parser("demo-cashout", help="create a cash-out at the running dev stack's sandbox")
    demo.add_argument("--state-dir", default=str(DEV_DIR))
    demo.add_argument("--amount", type=int, default=100_000)
    demo.add_argument("--account", default="19030413601018", help="ending in 0000 makes it FAIL")
    demo.add_argument("--name", default="NGUYEN VAN ANH", help="EXPIRE ME makes it wait until it expires")
    demo.add_argument("--email", default="demo.user@example.com")
    demo.set_defaults(run=_demo_cashout)

    migrate = commands.add_parser("migrate", help="upgrade the database schema to the latest revision")
    _database_option(migrate)
    migrate.set_defaults(run=_migrate)

    i18n = commands.add_parser("i18n", help="extract messages and update the en/vi/zh catalogues")
    i18n.set_defaults(run=_i18n)

    audit = commands.add_parser("audit", help="the support audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check the hash chain; exit 1 naming the first broken row")
    _database_option(verify)
    verify.set_defaults(run=_audit_verify)

    partners = commands.add_parser("partners", help="partners who embed the cash-out (add, list, show, ...)")
    from webapp.embed.cli import add_arguments

    _database_option(partners)
    add_arguments(partners)
    partners.set_defaults(run=_partners)

    api_keys = commands.add_parser("api-keys", help="partners' API keys for the partner API (create, list, revoke)")
    from webapp.partner_api.cli import add_arguments as add_api_key_arguments

    _database_option(api_keys)
    add_api_key_arguments(api_keys)
    api_keys.set_defaults(run=_api_keys)

    secrets = commands.add_parser("secrets", help="partner secrets sealed in the database (SECRETS_KEY)")
    secrets_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    reencrypt = secrets_commands.add_parser("reencrypt", help="seal every partner secret with the newest key")
    _database_option(reencrypt)
    reencrypt.set_defaults(run=_reencrypt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_stack_commands(commands)
    _add_tool_commands(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
