"""`python -m webapp partners add|list|show|disable|enable|rotate-secret`: partners from the command line.

Secrets are printed once, when they are made (add, rotate-secret); `show` never prints them.
"""

import argparse
import json
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.config import Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.embed.models import Partner
from webapp.embed.partners import (
    PartnerError,
    PartnerSpec,
    all_partners,
    partner_by_slug,
    rotate_webhook_secret,
    save_partner,
    set_enabled,
)
from webapp.embed.theme import ThemeError
from webapp.embed.tokens import ALGORITHMS


def public_view(partner: Partner) -> dict[str, object]:
    return {
        "slug": partner.slug,
        "name": partner.name,
        "enabled": partner.enabled,
        "allowed_origins": partner.allowed_origins,
        "return_urls": partner.return_urls,
        "token_alg": partner.token_alg,
        "webhook_url": partner.webhook_url,
        "logo_url": partner.logo_url,
        "primary_color": partner.primary_color,
        "theme_mode": partner.theme_mode,
    }


def add_arguments(partners: argparse.ArgumentParser) -> None:
    commands = partners.add_subparsers(dest="partners_command", required=True)
    add = commands.add_parser("add", help="add a partner, or update the one with this slug")
    add.add_argument("slug")
    add.add_argument("--name", required=True)
    add.add_argument("--origin", action="append", required=True, help="an origin that may frame us (repeatable)")
    add.add_argument("--return-url", action="append", default=[], help="a URL tokens may return to (repeatable)")
    add.add_argument("--token-alg", choices=ALGORITHMS, default="HS256")
    add.add_argument("--public-key-file", type=Path, help="the partner's PEM public key (EdDSA, RS256)")
    add.add_argument("--webhook-url")
    add.add_argument("--logo-url")
    add.add_argument("--primary-color", default="#0b57d0")
    add.add_argument("--theme", choices=("light", "dark"), default="light")
    for name in ("list", "show", "disable", "enable", "rotate-secret"):
        command = commands.add_parser(name)
        if name != "list":
            command.add_argument("slug")


async def run(args: argparse.Namespace) -> int:
    engine = make_engine(Settings().database.url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await _run(session, args)
    finally:
        await engine.dispose()


async def _run(session: AsyncSession, args: argparse.Namespace) -> int:
    command = args.partners_command
    if command == "add":
        spec = PartnerSpec(
            slug=args.slug,
            name=args.name,
            origins=args.origin,
            return_urls=args.return_url,
            token_alg=args.token_alg,
            token_key=args.public_key_file.read_text() if args.public_key_file else "",
            webhook_url=args.webhook_url,
            logo_url=args.logo_url,
            primary_color=args.primary_color,
            theme_mode=args.theme,
        )
        is_new = await partner_by_slug(session, spec.slug.strip().lower()) is None
        try:
            partner = await save_partner(session, spec)
        except (PartnerError, ThemeError) as error:
            print(f"not saved: {error}")  # noqa: T201
            return 2
        secrets = {"webhook_secret": partner.webhook_secret} if is_new else {}
        if is_new and partner.token_alg == "HS256":  # noqa: S105 (an algorithm's name)
            secrets["launch_token_secret"] = partner.token_key
        print(json.dumps(public_view(partner) | secrets, indent=2))  # noqa: T201
        return 0
    if command == "list":
        for partner in await all_partners(session):
            state = "on" if partner.enabled else "off"
            print(f"{partner.slug}\t{state}\t{partner.name}\t{' '.join(partner.allowed_origins)}")  # noqa: T201
        return 0
    if command in ("disable", "enable"):
        partner = await set_enabled(session, args.slug, enabled=command == "enable")
    elif command == "rotate-secret":
        secret = await rotate_webhook_secret(session, args.slug)
        if secret is not None:
            print(json.dumps({"slug": args.slug, "webhook_secret": secret}, indent=2))  # noqa: T201
            return 0
        partner = None
    else:
        partner = await partner_by_slug(session, args.slug)
    if partner is None:
        print(f"no partner {args.slug!r}")  # noqa: T201
        return 1
    print(json.dumps(public_view(partner), indent=2))  # noqa: T201
    return 0
