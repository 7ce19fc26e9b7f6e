"""`python -m webapp api-keys create|list|revoke SLUG`: a partner's API keys from the command line.

A key is printed once, when made; lists show names and prefixes only. Each change is on the audit log.
"""

import argparse
import getpass
import json

from webapp import audit
from webapp.db import command_sessionmaker
from webapp.embed.partners import partner_by_slug
from webapp.partner_api.keys import keys_of, make_key, revoke_key
from webapp.partner_api.models import PartnerApiKey


def add_arguments(command: argparse.ArgumentParser) -> None:
    actions = command.add_subparsers(dest="api_keys_command", required=True)
    create = actions.add_parser("create", help="make a key (printed once)")
    create.add_argument("slug")
    create.add_argument("--name", required=True, help='what the partner calls it ("reconciliation job")')
    listing = actions.add_parser("list", help="the partner's keys: name, prefix, made, last used, revoked")
    listing.add_argument("slug")
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix (cok_…), at once")
    revoke.add_argument("slug")
    revoke.add_argument("prefix")


def key_view(key: PartnerApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def run(args: argparse.Namespace, database_url: str) -> int:
    async with command_sessionmaker(database_url) as sessionmaker:
        async with sessionmaker() as session, session.begin():
            partner = await partner_by_slug(session, args.slug)
            if partner is None:
                print(f"no partner {args.slug!r}")  # noqa: T201
                return 1
            if args.api_keys_command == "list":
                print(json.dumps([key_view(key) for key in await keys_of(session, partner)], indent=2))  # noqa: T201
                return 0
            if args.api_keys_command == "create":
                try:
                    made = await make_key(session, partner, args.name)
                except ValueError as error:
                    print(f"not made: {error}")  # noqa: T201
                    return 2
                key, shown, action = made.key, {"api_key": made.plain}, "api_key_created"
            else:
                revoked = await revoke_key(session, partner, args.prefix)
                if revoked is None:
                    print(f"partner {args.slug!r} has no key {args.prefix!r}")  # noqa: T201
                    return 1
                key, shown, action = revoked, {}, "api_key_revoked"
            view = key_view(key) | shown
        actor = f"command line ({getpass.getuser()})"
        await audit.append(sessionmaker, actor=actor, action=action, detail=f"{args.slug} {key.prefix}")
    print(json.dumps(view, indent=2))  # noqa: T201
    return 0
