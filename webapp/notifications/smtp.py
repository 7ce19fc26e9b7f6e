"""Where mail goes: `SMTP_URL` read into what the SMTP client needs (no other module parses it)."""

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import unquote, urlsplit

SCHEMES = {"smtp": (False, None), "smtp+starttls": (False, True), "smtps": (True, False)}
"""URL scheme → (TLS from the start, STARTTLS): plain SMTP upgrades when the server offers it."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    use_tls: bool
    start_tls: bool | None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        """`smtp://host:25`, `smtp+starttls://user:password@host:587` or `smtps://user:password@host:465`."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://, smtp+starttls:// or smtps:// and name a host")
        use_tls, start_tls = SCHEMES[parts.scheme]
        default_port = 465 if use_tls else 587 if start_tls else 25
        return cls(
            parts.hostname,
            parts.port or default_port,
            use_tls,
            start_tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    @property
    def encrypted(self) -> bool:
        return self.use_tls or bool(self.start_tls)

    @property
    def on_loopback(self) -> bool:
        try:
            return ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"
