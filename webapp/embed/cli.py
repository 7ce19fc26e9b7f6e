"""Partners from the command line: `python -m webapp partners …` and `python -m webapp secrets reencrypt`.

`partners` has add, update, list, show, disable, enable, rotate-secret and rotate-launch-secret.

Secrets are printed once, when they are made (add, the rotations); `show` never prints them. `add` refuses a slug
that exists; `update` changes only the options it is given. A rotated secret, or a launch key that `update`
replaces, still counts for `PARTNER_ROTATION_GRACE_HOURS` beside the new one.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import command_sessionmaker
from webapp.embed.models import Partner
from webapp.embed.partners import (
    PartnerError,
    PartnerSecrets,
    PartnerSpec,
    all_partners,
    partner_by_slug,
    reseal_all,
    rotate_launch_secret,
    rotate_webhook_secret,
    save_partner,
    set_enabled,
    spec_of,
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
    add = commands.add_parser("add", help="add a partner (a slug that exists is refused: see update)")
    _partner_options(add, adding=True)
    update = commands.add_parser("update", help="change a partner: only the options given")
    _partner_options(update, adding=False)
    helps = {
        "rotate-secret": "a new webhook secret (the old one signs beside it for the grace period)",
        "rotate-launch-secret": "a new HS256 launch secret (tokens made with the old one count for the grace period)",
    }
    for name in ("list", "show", "disable", "enable", "rotate-secret", "rotate-launch-secret"):
        command = commands.add_parser(name, help=helps.get(name))
        if name != "list":
            command.add_argument("slug")


def _partner_options(command: argparse.ArgumentParser, *, adding: bool) -> None:
    """`add` requires a name and an origin and has defaults; `update` has none, so what is not given stays."""
    default = (lambda value: value) if adding else (lambda _value: None)
    command.add_argument("slug")
    command.add_argument("--name", required=adding)
    command.add_argument(
        "--origin",
        action="append",
        required=adding,
        help="an origin that may frame us (repeatable; the first is the default)",
    )
    command.add_argument(
        "--return-url", action="append", default=default([]), help="a URL tokens may return to (repeatable)"
    )
    command.add_argument("--token-alg", choices=ALGORITHMS, default=default("HS256"))
    command.add_argument("--public-key-file", type=Path, help="the partner's PEM public key (EdDSA, RS256)")
    command.add_argument("--webhook-url")
    command.add_argument("--logo-url")
    command.add_argument("--primary-color", default=default("#0b57d0"))
    command.add_argument("--theme", choices=("light", "dark"), default=default("light"))


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The spec's fields the command line gives (for `update`, only those)."""
    values = {
        "name": args.name,
        "origins": args.origin,
        "return_urls": args.return_url,
        "token_alg": args.token_alg,
        "token_key": args.public_key_file.read_text() if args.public_key_file else None,
        "webhook_url": args.webhook_url,
        "logo_url": args.logo_url,
        "primary_color": args.primary_color,
        "theme_mode": args.theme,
    }
    return {name: value for name, value in values.items() if value is not None}


async def run(args: argparse.Namespace, database_url: str, secrets: PartnerSecrets) -> int:
    async with command_sessionmaker(database_url) as sessionmaker, sessionmaker() as session, session.begin():
        return await _run(session, args, secrets)


async def reencrypt(database_url: str, secrets: PartnerSecrets) -> int:
    """`secrets reencrypt`: every partner secret sealed again with the newest key of `SECRETS_KEY`."""
    async with command_sessionmaker(database_url) as sessionmaker, sessionmaker() as session, session.begin():
        count = await reseal_all(session, secrets.box)
    print(f"partner secrets sealed with the newest key: {count} partners")  # noqa: T201
    return 0


async def _run(session: AsyncSession, args: argparse.Namespace, secrets: PartnerSecrets) -> int:
    command = args.partners_command
    if command in ("add", "update"):
        return await _save(session, args, secrets)
    if command == "list":
        for partner in await all_partners(session):
            state = "on" if partner.enabled else "off"
            print(f"{partner.slug}\t{state}\t{partner.name}\t{' '.join(partner.allowed_origins)}")  # noqa: T201
        return 0
    if command in ("disable", "enable"):
        partner = await set_enabled(session, args.slug, enabled=command == "enable")
    elif command in ("rotate-secret", "rotate-launch-secret"):
        webhook = command == "rotate-secret"
        rotate, name = (
            (rotate_webhook_secret, "webhook_secret") if webhook else (rotate_launch_secret, "launch_token_secret")
        )
        secret = await rotate(session, args.slug, secrets)
        if secret is not None:
            print(json.dumps({"slug": args.slug, name: secret}, indent=2))  # noqa: T201
            return 0
        if not webhook and await partner_by_slug(session, args.slug) is not None:
            print("not rotated: this partner signs with its own key; register the new one with update")  # noqa: T201
            return 2
        partner = None
    else:
        partner = await partner_by_slug(session, args.slug)
    if partner is None:
        print(f"no partner {args.slug!r}")  # noqa: T201
        return 1
    print(json.dumps(public_view(partner), indent=2))  # noqa: T201
    return 0


async def _save(session: AsyncSession, args: argparse.Namespace, secrets: PartnerSecrets) -> int:
    slug = args.slug.strip().lower()
    existing = await partner_by_slug(session, slug)
    if args.partners_command == "add" and existing is not None:
        print(f"not saved: partner {slug!r} exists; change it with `partners update {slug}`")  # noqa: T201
        return 2
    if args.partners_command == "update" and existing is None:
        print(f"no partner {slug!r}")  # noqa: T201
        return 1
    given = _given(args)
    new_alg = existing is not None and given.get("token_alg", existing.token_alg) != existing.token_alg
    if new_alg and "token_key" not in given:  # the old key never carries over to another algorithm
        if given["token_alg"] != "HS256":  # noqa: S105 (an algorithm's name)
            print("not saved: another launch token algorithm needs its --public-key-file")  # noqa: T201
            return 2
        given["token_key"] = ""  # a new shared secret is made
    spec = replace(spec_of(existing, secrets), **given) if existing else PartnerSpec(slug=slug, **given)  # type: ignore[arg-type]
    try:
        partner = await save_partner(session, spec, secrets)
    except (PartnerError, ThemeError) as error:
        print(f"not saved: {error}")  # noqa: T201
        return 2
    made = {"webhook_secret": secrets.webhook_secrets(partner)[0]} if existing is None else {}
    if (existing is None or new_alg) and partner.token_alg == "HS256":  # noqa: S105 (an algorithm's name)
        made["launch_token_secret"] = secrets.launch_key(partner)
    print(json.dumps(public_view(partner) | made, indent=2))  # noqa: T201
    return 0
