"""Registering partners: every URL and colour is checked when saved, so pages and headers can trust them."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from joserfc.jwk import Key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.config import Settings
from webapp.db import in_utc, utcnow
from webapp.embed.models import Partner
from webapp.embed.theme import Theme
from webapp.embed.tokens import verification_key
from webapp.secretbox import SealError, SecretBox

SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class PartnerError(ValueError):
    pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(value: str, what: str) -> str:
    """An absolute https URL (plain http only on loopback, for development), without credentials or fragment."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or (parts.scheme == "http" and not _is_loopback(host)):
        raise PartnerError(f"{what} {value!r} must be an https URL (http only on localhost)")
    if parts.username or parts.password or parts.fragment:
        raise PartnerError(f"{what} {value!r} must not carry credentials or a fragment")
    return value.strip()


def checked_origin(value: str) -> str:
    """`scheme://host[:port]` exactly as browsers send it in `Origin`, so it can go into CSP and `targetOrigin`."""
    url = checked_url(value.rstrip("/"), "origin")
    parts = urlsplit(url)
    if parts.path or parts.query:
        raise PartnerError(f"origin {value!r} must be scheme://host[:port], without a path")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass
class PartnerSpec:
    slug: str
    name: str
    origins: list[str]
    token_alg: str
    token_key: str = ""
    """A PEM public key for EdDSA/RS256; for HS256 left empty to have a secret made."""
    return_urls: list[str] = field(default_factory=list)
    webhook_url: str | None = None
    logo_url: str | None = None
    primary_color: str = "#0b57d0"
    theme_mode: str = "light"

    def checked(self) -> "PartnerSpec":
        slug = self.slug.strip().lower()
        if not slug or len(slug) > 40 or not set(slug) <= SLUG_CHARS:
            raise PartnerError("slug must be 1-40 characters: lowercase letters, digits and -")
        if not self.name.strip():
            raise PartnerError("name is required")
        if not self.origins:
            raise PartnerError("at least one allowed origin is required")
        theme = Theme.checked(self.primary_color, self.theme_mode)
        made = new_secret("launch") if self.token_alg == "HS256" else ""  # noqa: S105 (an algorithm's name)
        token_key = self.token_key or made
        try:
            verification_key(self.token_alg, token_key)
        except ValueError as error:
            raise PartnerError(f"launch token key: {error}") from error
        return PartnerSpec(
            slug=slug,
            name=self.name.strip()[:100],
            origins=list(dict.fromkeys(checked_origin(origin) for origin in self.origins)),  # the first is the default
            token_alg=self.token_alg,
            token_key=token_key,
            return_urls=[checked_url(url, "return URL") for url in self.return_urls],
            webhook_url=checked_url(self.webhook_url, "webhook URL") if self.webhook_url else None,
            logo_url=checked_url(self.logo_url, "logo URL") if self.logo_url else None,
            primary_color=theme.primary,
            theme_mode=theme.mode,
        )


@dataclass(frozen=True)
class PartnerSecrets:
    """How partners' secrets are kept: sealed at rest by `box`; one replaced still counts for `grace` (a rotation).

    The one place that opens them: what signs a webhook or a return link, what verifies a launch token.
    """

    box: SecretBox
    grace: timedelta = timedelta(hours=24)

    @classmethod
    def of(cls, settings: Settings) -> "PartnerSecrets":
        grace = timedelta(hours=settings.partner_rotation_grace_hours)
        return cls(SecretBox.of(settings.secrets_key.get_secret_value()), grace)

    def _still(self, until: datetime | None, now: datetime | None) -> bool:
        return until is not None and in_utc(until) > (now or utcnow())

    def webhook_secrets(self, partner: Partner, now: datetime | None = None) -> list[str]:
        """What signs now: the current secret, then the one it replaced while its grace lasts."""
        kept = [partner.webhook_secret]
        if partner.previous_webhook_secret and self._still(partner.previous_webhook_secret_until, now):
            kept.append(partner.previous_webhook_secret)
        return [self.box.open(sealed) for sealed in kept]

    def replaced(self, partner: Partner, now: datetime | None = None) -> dict[str, datetime]:
        """Until when a replaced secret still counts, by kind (`webhook`, `launch`), while it does."""
        untils = {"webhook": partner.previous_webhook_secret_until, "launch": partner.previous_token_until}
        return {kind: in_utc(until) for kind, until in untils.items() if until and self._still(until, now)}

    def launch_key(self, partner: Partner) -> str:
        """The current launch key as registered (a PEM public key, or the HS256 secret)."""
        return self.box.open(partner.token_key)

    def launch_keys(self, partner: Partner, now: datetime | None = None) -> list[tuple[str, Key]]:
        """(algorithm, key) verifying launch tokens now: the current, then the one it replaced while its grace lasts."""
        keys = [(partner.token_alg, verification_key(partner.token_alg, self.launch_key(partner)))]
        previous_alg, previous_key = partner.previous_token_alg, partner.previous_token_key
        if previous_alg and previous_key and self._still(partner.previous_token_until, now):
            keys.append((previous_alg, verification_key(previous_alg, self.box.open(previous_key))))
        return keys


def spec_of(partner: Partner, secrets: PartnerSecrets) -> PartnerSpec:
    """What a partner was saved with, to change some of it (`partners update`)."""
    return PartnerSpec(
        slug=partner.slug,
        name=partner.name,
        origins=partner.allowed_origins,
        token_alg=partner.token_alg,
        token_key=secrets.launch_key(partner),
        return_urls=partner.return_urls,
        webhook_url=partner.webhook_url,
        logo_url=partner.logo_url,
        primary_color=partner.primary_color,
        theme_mode=partner.theme_mode,
    )


def _apply_spec(partner: Partner, spec: PartnerSpec, secrets: PartnerSecrets) -> None:
    """Set what the spec says; a launch key that changes is kept as the previous one for the grace period."""
    if partner.id is not None and (spec.token_alg, spec.token_key) != (partner.token_alg, secrets.launch_key(partner)):
        _keep_previous_launch_key(partner, secrets)
    partner.name, partner.allowed_origins, partner.return_urls = spec.name, spec.origins, spec.return_urls
    partner.token_alg, partner.token_key = spec.token_alg, secrets.box.seal(spec.token_key)
    partner.webhook_url, partner.logo_url = spec.webhook_url, spec.logo_url
    partner.primary_color, partner.theme_mode = spec.primary_color, spec.theme_mode
    partner.updated_at = utcnow()


def _keep_previous_launch_key(partner: Partner, secrets: PartnerSecrets) -> None:
    partner.previous_token_alg, partner.previous_token_key = partner.token_alg, partner.token_key
    partner.previous_token_until = utcnow() + secrets.grace


async def save_partner(
    session: AsyncSession, spec: PartnerSpec, secrets: PartnerSecrets, *, webhook_secret: str | None = None
) -> Partner:
    """Add the partner, or update the one with this slug (keeping its webhook secret unless one is given)."""
    spec = spec.checked()
    partner = await partner_by_slug(session, spec.slug)
    if partner is None:
        partner = Partner(slug=spec.slug, token_alg=spec.token_alg, token_key="", webhook_secret="", name="")
        session.add(partner)
    _apply_spec(partner, spec, secrets)
    if webhook_secret or not partner.webhook_secret:
        partner.webhook_secret = secrets.box.seal(webhook_secret or new_secret("whsec"))
    await session.flush()
    return partner


async def partner_by_slug(session: AsyncSession, slug: str) -> Partner | None:
    return (await session.exec(select(Partner).where(Partner.slug == slug))).first()


async def all_partners(session: AsyncSession) -> list[Partner]:
    return list((await session.exec(select(Partner).order_by(col(Partner.slug)))).all())


async def set_enabled(session: AsyncSession, slug: str, *, enabled: bool) -> Partner | None:
    partner = await partner_by_slug(session, slug)
    if partner is not None:
        partner.enabled, partner.updated_at = enabled, utcnow()
    return partner


async def rotate_webhook_secret(session: AsyncSession, slug: str, secrets: PartnerSecrets) -> str | None:
    """A new webhook secret, returned once; the one it replaces still signs for the grace period. None: no partner."""
    partner = await partner_by_slug(session, slug)
    if partner is None:
        return None
    made = new_secret("whsec")
    partner.previous_webhook_secret, partner.previous_webhook_secret_until = (
        partner.webhook_secret,
        utcnow() + secrets.grace,
    )
    partner.webhook_secret, partner.updated_at = secrets.box.seal(made), utcnow()
    return made


async def rotate_launch_secret(session: AsyncSession, slug: str, secrets: PartnerSecrets) -> str | None:
    """A new HS256 launch secret, returned once; tokens signed with the old one count for the grace period.

    None for no such partner, or one whose tokens are signed with its own private key (it registers a new public
    key instead: `partners update --public-key-file`, which keeps the old one just as long).
    """
    partner = await partner_by_slug(session, slug)
    if partner is None or partner.token_alg != "HS256":  # noqa: S105 (an algorithm's name)
        return None
    made = new_secret("launch")
    _keep_previous_launch_key(partner, secrets)
    partner.token_key, partner.updated_at = secrets.box.seal(made), utcnow()
    return made


SEALED_COLUMNS = ("token_key", "webhook_secret", "previous_token_key", "previous_webhook_secret")
"""A partner's columns kept sealed with `SECRETS_KEY` (the `previous_` ones while a rotation lasts, else empty)."""


async def unopened_secrets(session: AsyncSession, box: SecretBox) -> list[str]:
    """The partners with a stored secret no key of `SECRETS_KEY` opens (readiness: their launches would fail)."""
    unopened = []
    for partner in await all_partners(session):
        try:
            for column in SEALED_COLUMNS:
                if value := getattr(partner, column):
                    box.open(value)
        except SealError:
            unopened.append(partner.slug)
    return unopened


async def reseal_all(session: AsyncSession, box: SecretBox) -> int:
    """Every partner secret sealed again with the newest key of `SECRETS_KEY`; returns how many partners."""
    partners = await all_partners(session)
    for partner in partners:
        for column in SEALED_COLUMNS:
            if value := getattr(partner, column):
                setattr(partner, column, box.reseal(value))
    return len(partners)
