"""RSA-SHA256 (PKCS#1 v1.5) signatures as standard base64: the primitive both sides of the wire use.

Key objects stay inside `Signer` and `Verifier`, whose `repr` shows only a public fingerprint.
"""

import base64
import binascii
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from webapp.alixpay.keys import fingerprint, load_private_key, load_public_key


class Signer:
    __slots__ = ("_key",)

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> "Signer":
        return cls(load_private_key(path))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._key)

    def sign(self, text: str) -> str:
        signature = self._key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def __repr__(self) -> str:
        return f"Signer(fingerprint={self.fingerprint[:16]}…)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Signer holds a private key and is never pickled")


class Verifier:
    """Accepts a signature made by any of its keys: two Alix Pay keys are trusted during a rotation."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[rsa.RSAPublicKey]) -> None:
        self._keys = tuple(keys)
        if not self._keys:
            raise ValueError("a Verifier needs at least one public key")

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> "Verifier":
        return cls(load_public_key(path) for path in paths)

    def verify(self, text: str, signature: str | None) -> bool:
        if not signature:
            return False
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        message = text.encode("utf-8")
        for key in self._keys:
            try:
                key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return True
        return False

    def __repr__(self) -> str:
        return f"Verifier(keys={[fingerprint(key)[:16] for key in self._keys]})"
