"""Sandbox settings, from `SANDBOX_*` environment variables; defaults match the app's development defaults."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from webapp.config import DEV_ALIXPAY_SECRET_KEY, DEV_DIR
from webapp.sandbox.dialects import Dialect, ErrorShape


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8001
    partner_code: str = "devpartner"
    secret_key: SecretStr = SecretStr(DEV_ALIXPAY_SECRET_KEY)
    partner_public_key_file: Path = DEV_DIR / "partner_public.pem"
    private_key_file: Path = DEV_DIR / "alix_private.pem"
    ipn_url: str = "http://127.0.0.1:8000/ipn/alixpay"
    database_url: str = "sqlite+aiosqlite:///var/sandbox.db"
    speed: float = 3.0
    """Seconds per status step."""
    min_amount: int = 50_000
    expiry_seconds: float = 15 * 60
    retry_base_seconds: float = 2.0
    """IPN retry schedule: base, 2×base, 4×base, … until `max_attempts` (2, 4, 8, 16, 32 s by default)."""
    max_attempts: int = 6
    ipn_timeout_seconds: float = 5.0
    tick_seconds: float = 0.1
    dialect: Dialect = "documented"
    """How successful answers and IPNs are shaped (a request may choose with `X-Sandbox-Dialect`)."""
    error_shape: ErrorShape = "envelope-4xx"
    """How refusals are shaped (a request may choose with `X-Sandbox-Error-Shape`)."""
    ipn_secret: Literal["secret_key", "webhook_secret_key"] = "secret_key"  # noqa: S105 (a choice, not a secret)
    """The secret IPN signatures end with: ours, or the order's `webhookSecretKey` (CONTRACT.md §5)."""
