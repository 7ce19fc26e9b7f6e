"""RSA key loading and fingerprints for the partner and Alix Pay key pairs."""

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# SHA-256 of the SubjectPublicKeyInfo of the public test keys in shared/alixpay/vectors/.
# They are published test material: production must refuse them (see config.py).
SHARED_TEST_KEY_FINGERPRINTS = frozenset(
    {
        "5368952986e53bc8a701bd4621bb24e7d84eb71b0c4fc21b4b843645f1bc5a69",  # partner_public.pem
        "c49d7ca792bbc6b19adffad4bf65daf4763ef3ae8d2d134fc739d89fa5aaa1d4",  # alix_public.pem
    }
)


class KeyLoadError(ValueError):
    """A key file is missing or is not an RSA PEM key; the message names the file, never its content."""


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PKCS#8 or PKCS#1 PEM (both are accepted by Alix Pay)."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyLoadError(f"cannot load RSA private key from {path}: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError(f"{path} does not hold an RSA private key")
    return key


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise KeyLoadError(f"cannot load RSA public key from {path}: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError(f"{path} does not hold an RSA public key")
    return key


def fingerprint(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """Hex SHA-256 of the public key's DER SubjectPublicKeyInfo: safe to log and compare."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def is_shared_test_key(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bool:
    return fingerprint(key) in SHARED_TEST_KEY_FINGERPRINTS


def generate_key_pair(private_path: Path, public_path: Path) -> None:
    """Write a fresh RSA-2048 pair (PKCS#8 private, SPKI public); the private file is readable by its owner only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600)
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
