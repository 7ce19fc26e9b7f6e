"""The development mailbox: a local SMTP sink (aiosmtpd) and a page listing what it received (developer tool).

`python -m webapp mailbox` (the dev stack runs it, listed in `stack.json`). Mail is kept in a Maildir, so it
survives restarts and two stacks with their own state directories never mix. `POST /admin/refuse` makes the sink
answer the next N mails with a temporary failure, to watch the app retry.
"""

import asyncio
import mailbox
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Response, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from pydantic_settings import BaseSettings, SettingsConfigDict

from webapp.rendering import TEMPLATES_DIR
from webapp.templating import make_environment

REFUSAL = "451 4.3.0 Mailbox told to refuse this mail; try again later"


class MailboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILBOX_")

    host: str = "127.0.0.1"
    smtp_port: int = 8025
    http_port: int = 8026
    directory: Path = Path("var/dev/mailbox")


class Sink:
    """aiosmtpd's handler: store every mail, unless told to refuse the next few."""

    def __init__(self, maildir: mailbox.Maildir) -> None:
        self.maildir = maildir
        self.refuse_next = 0

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return REFUSAL
        content = envelope.original_content or b""
        self.maildir.add(content)
        return "250 OK"


@dataclass(frozen=True)
class Received:
    key: str
    mail: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.mail.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "to": self.mail["To"],
            "from": self.mail["From"],
            "subject": self.mail["Subject"],
            "date": self.mail["Date"],
            "message_id": self.mail["Message-ID"],
            "language": self.mail["Content-Language"],
            "text": self.part("plain"),
            "html": self.part("html"),
        }


def received(maildir: mailbox.Maildir) -> list[Received]:
    """Every mail, newest first."""
    stored = [(maildir.get_message(key).get_date(), key) for key in maildir.iterkeys()]
    return [
        Received(key, message_from_bytes(maildir.get_bytes(key), policy=policy.default))  # type: ignore[arg-type]
        for _, key in sorted(stored, reverse=True)
    ]


def create_mailbox_app(settings: MailboxSettings) -> Litestar:
    settings.directory.parent.mkdir(parents=True, exist_ok=True)  # Maildir makes its own folder and subfolders
    maildir = mailbox.Maildir(settings.directory, create=True)
    sink = Sink(maildir)

    @asynccontextmanager
    async def smtp_server(_app: Litestar) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return SMTP(sink, hostname="mailbox.local", enable_SMTPUTF8=True)

        server = await loop.create_server(protocol, settings.host, settings.smtp_port)
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    @get("/", sync_to_thread=False)
    def index() -> Template:
        return Template("mailbox/index.html", context={"mails": received(maildir), "settings": settings})

    @get("/messages/{key:str}/html", sync_to_thread=False)
    def html_part(key: str) -> Response[str]:
        """A mail's HTML as its recipient's client would show it: sandboxed, no scripts, nothing loaded from afar."""
        for item in received(maildir):
            if item.key == key:
                return Response(
                    item.part("html"),
                    media_type="text/html",
                    headers={"Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'"},
                )
        raise NotFoundException

    @get("/api/messages", sync_to_thread=False)
    def messages() -> list[dict[str, Any]]:
        return [item.summary() for item in received(maildir)]

    @post("/admin/refuse", sync_to_thread=False, status_code=200)
    def refuse(data: dict[str, int]) -> dict[str, int]:
        sink.refuse_next = max(int(data.get("count", 1)), 0)
        return {"refuse_next": sink.refuse_next}

    @post("/admin/clear", sync_to_thread=False, status_code=200)
    def clear() -> dict[str, int]:
        maildir.clear()
        return {"cleared": 1}

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[
            index,
            html_part,
            messages,
            refuse,
            clear,
            healthz,
            create_static_files_router(path="/static", directories=[TEMPLATES_DIR.parent / "static"]),
        ],
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment())),
        lifespan=[smtp_server],
    )
