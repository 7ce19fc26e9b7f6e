"""API keys: `cok_<prefix>_<secret>`, made with 256 bits of randomness, stored as a SHA-256 hash.

A key's entropy makes a plain hash enough (no slow hash needed: nothing to guess). It is found by its prefix and
compared in constant time; a revoked key, or one of a switched-off partner, opens nothing.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import in_utc, utcnow
from webapp.embed.models import Partner
from webapp.partner_api.models import PartnerApiKey

KEY_SHAPE = re.compile(r"cok_([a-z0-9]{8})_[A-Za-z0-9_-]{43}")
LAST_USED_EVERY = timedelta(minutes=1)


def key_prefix(authorization: str) -> str | None:
    """The visible prefix of the key an `Authorization: Bearer` header carries (what rate limits count by)."""
    shape = KEY_SHAPE.fullmatch(authorization.removeprefix("Bearer ").strip())
    return f"cok_{shape.group(1)}" if shape else None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class MadeKey:
    key: PartnerApiKey
    plain: str
    """The whole key: shown to the partner once."""


async def make_key(session: AsyncSession, partner: Partner, name: str) -> MadeKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("an API key needs a name of 1-100 characters")
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    plain = f"cok_{prefix}_{secrets.token_urlsafe(32)}"
    key = PartnerApiKey(partner_id=partner.id or 0, name=name, prefix=f"cok_{prefix}", key_hash=_hash(plain))
    session.add(key)
    await session.flush()
    return MadeKey(key, plain)


async def partner_of_key(session: AsyncSession, presented: str) -> tuple[Partner, PartnerApiKey] | None:
    """The partner a presented key belongs to, if the key is whole, current and its partner switched on."""
    prefix = key_prefix(presented)
    if prefix is None:
        return None
    key = (await session.exec(select(PartnerApiKey).where(PartnerApiKey.prefix == prefix))).first()
    if key is None or key.revoked_at is not None or not secrets.compare_digest(key.key_hash, _hash(presented)):
        return None
    partner = await session.get(Partner, key.partner_id)
    if partner is None or not partner.enabled:
        return None
    now = utcnow()
    if key.last_used_at is None or now - in_utc(key.last_used_at) > LAST_USED_EVERY:
        key.last_used_at = now
    return partner, key


async def keys_of(session: AsyncSession, partner: Partner) -> list[PartnerApiKey]:
    query = select(PartnerApiKey).where(PartnerApiKey.partner_id == partner.id).order_by(col(PartnerApiKey.id))
    return list((await session.exec(query)).all())


async def revoke_key(session: AsyncSession, partner: Partner, prefix: str) -> PartnerApiKey | None:
    """Revoke the partner's key with this prefix (at once, on every instance); None if it has none such."""
    query = select(PartnerApiKey).where(PartnerApiKey.partner_id == partner.id, PartnerApiKey.prefix == prefix)
    key = (await session.exec(query)).first()
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
