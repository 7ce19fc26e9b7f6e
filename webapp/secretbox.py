"""Partner secrets at rest: sealed with `SECRETS_KEY` (Fernet: AES-128-CBC and HMAC-SHA256) before they are stored.

`SECRETS_KEY` lists Fernet keys, newest first: the newest seals, every one opens, so the key can rotate
(`python -m webapp secrets reencrypt` re-seals every stored secret under the newest; docs/operations.md). A stolen
database without the key gives away no launch or webhook secret. API keys are never stored at all, only hashes.
"""

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED = "fernet:"
"""What a sealed value starts with: what is stored says how it was stored."""


class SealError(ValueError):
    """A stored secret no key of `SECRETS_KEY` opens (the key that sealed it was removed, or the row was edited)."""


def secrets_keys(setting: str) -> list[str]:
    """The keys of a `SECRETS_KEY` value (comma-separated, newest first), each checked to be a Fernet key."""
    keys = [part.strip() for part in setting.split(",") if part.strip()]
    if not keys:
        raise ValueError("SECRETS_KEY needs at least one key")
    for key in keys:
        try:
            Fernet(key)
        except ValueError as error:
            raise ValueError(
                "each SECRETS_KEY key must be 32 url-safe base64-encoded bytes (make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            ) from error
    return keys


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def of(cls, setting: str) -> "SecretBox":
        return cls(secrets_keys(setting))

    def seal(self, plain: str) -> str:
        return SEALED + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(SEALED):
            raise SealError("a partner secret is stored unsealed: run `python -m webapp migrate`")
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED).encode()).decode()
        except InvalidToken:
            raise SealError("a partner secret was sealed with a key SECRETS_KEY no longer lists") from None

    def reseal(self, stored: str) -> str:
        """The same secret sealed with the newest key (an unsealed one is sealed)."""
        if not stored.startswith(SEALED):
            return self.seal(stored)
        try:
            return SEALED + self._fernet.rotate(stored.removeprefix(SEALED).encode()).decode()
        except InvalidToken:
            raise SealError("a partner secret was sealed with a key SECRETS_KEY no longer lists") from None
