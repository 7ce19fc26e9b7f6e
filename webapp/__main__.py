"""`python -m webapp dev|serve|migrate`: the embedded stack, the production server, the schema upgrade."""

import argparse
import logging
import os
import sys
from pathlib import Path

from webapp import devstack
from webapp.config import DEV_DIR, Settings


def _dev(args: argparse.Namespace) -> int:
    from webapp.migrate import upgrade

    state_dir = Path(args.state_dir)
    app_port = args.app_port or devstack.free_port()
    app_url = f"http://{devstack.LOOPBACK}:{app_port}"
    env = {"ENVIRONMENT": "development", "PUBLIC_BASE_URL": app_url}
    os.environ.update(env)
    upgrade(Settings().database.url)
    app = devstack.Service(
        name="app",
        args=[sys.executable, "-m", "webapp", "serve", "--host", devstack.LOOPBACK, "--port", str(app_port)],
        url=app_url,
        ready_url=f"{app_url}/healthz",
        env=env,
    )
    return devstack.serve_forever([app], state_dir / "stack.json")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "webapp.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        workers=args.workers,
        log_level="info",
    )
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from webapp.migrate import upgrade

    upgrade(Settings().database.url)
    return 0


def _i18n(_args: argparse.Namespace) -> int:
    from webapp.i18n_catalogs import update_catalogs

    update_catalogs()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole embedded stack on loopback")
    dev.add_argument("--app-port", type=int, default=8000, help="0 picks a free port")
    dev.add_argument("--state-dir", default=str(DEV_DIR), help="where stack.json and dev keys live")
    dev.set_defaults(run=_dev)

    serve = commands.add_parser("serve", help="run the app alone (production)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--forwarded-allow-ips", default="127.0.0.1", help="proxies whose X-Forwarded-* headers are trusted"
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database schema to the latest revision")
    migrate.set_defaults(run=_migrate)

    i18n = commands.add_parser("i18n", help="extract messages and update the en/vi/zh catalogues")
    i18n.set_defaults(run=_i18n)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
