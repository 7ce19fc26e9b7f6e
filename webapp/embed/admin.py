"""Admins manage partners: add or edit, switch on/off, rotate the secret, read and re-send webhook deliveries.

Every URL and colour is checked when saved, and every action is on the audit log.
"""

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp import audit
from webapp.auth.guards import SignedInRequest, requires_admin
from webapp.db import DbSession, Sessionmaker
from webapp.embed.models import Partner
from webapp.embed.partners import (
    PartnerError,
    PartnerSecrets,
    PartnerSpec,
    all_partners,
    partner_by_slug,
    rotate_launch_secret,
    rotate_webhook_secret,
    save_partner,
    set_enabled,
)
from webapp.embed.theme import ThemeError
from webapp.embed.tokens import ALGORITHMS
from webapp.embed.webhooks import WebhookSender, delivery_log


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]


def spec_from_form(data: dict[str, str]) -> PartnerSpec:
    return PartnerSpec(
        slug=data.get("slug", ""),
        name=data.get("name", ""),
        origins=lines(data.get("origins", "")),
        return_urls=lines(data.get("return_urls", "")),
        token_alg=data.get("token_alg", "HS256"),
        token_key=data.get("token_key", "").strip(),
        webhook_url=data.get("webhook_url", "").strip() or None,
        logo_url=data.get("logo_url", "").strip() or None,
        primary_color=data.get("primary_color", "").strip(),
        theme_mode=data.get("theme_mode", "light"),
    )


async def found(session: AsyncSession, slug: str) -> Partner:
    partner = await partner_by_slug(session, slug)
    if partner is None:
        raise NotFoundException()
    return partner


ROTATIONS = {
    "webhook": (rotate_webhook_secret, "partner_secret_rotated"),
    "launch": (rotate_launch_secret, "partner_launch_rotated"),
}
"""What `POST /admin/partners/{slug}/rotate/{kind}` makes anew, and the audit log's word for it."""


async def _detail(
    db_sessionmaker: Sessionmaker, secrets: PartnerSecrets, slug: str, *, made: dict[str, str] | None = None
) -> Template:
    """The partner's page; `made`: secrets just made (webhook, launch), shown on this answer only."""
    async with db_sessionmaker() as session:
        partner = await found(session, slug)
        log = await delivery_log(session, partner.id or 0)
    context = {"partner": partner, "log": log, "made": made or {}, "replaced": secrets.replaced(partner)}
    return Template("embed/admin/detail.html", context=context)


class PartnerAdminController(Controller):
    path = "/admin/partners"
    guards = [requires_admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", name="partners.list")
    async def list_partners(self, db_session: DbSession) -> Template:
        return Template("embed/admin/list.html", context={"partners": await all_partners(db_session)})

    @get("/new", name="partners.new")
    async def new(self) -> Template:
        return Template(
            "embed/admin/edit.html",
            context={"form": {"theme_mode": "light", "token_alg": "HS256"}, "algorithms": ALGORITHMS},
        )

    @post("/", name="partners.save", status_code=200)
    async def save(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        partner_secrets: NamedDependency[PartnerSecrets],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[Any]:
        """Add or update the partner named by the slug; the secrets it gets are shown on this answer only.

        A changed launch key keeps the previous one valid for the grace period (`PartnerSecrets`).
        """
        try:
            async with db_sessionmaker() as session, session.begin():
                is_new = await partner_by_slug(session, data.get("slug", "").strip().lower()) is None
                partner = await save_partner(session, spec_from_form(data), partner_secrets)
        except (PartnerError, ThemeError) as error:
            context = {"form": data, "error": str(error), "algorithms": ALGORITHMS}
            return Template("embed/admin/edit.html", context=context, status_code=422)
        await audit.append(db_sessionmaker, actor=request.user.email, action="partner_saved", detail=partner.slug)
        if not is_new:
            return Redirect(request.app.route_reverse("partners.detail", slug=partner.slug), status_code=303)
        made = {"webhook": partner_secrets.webhook_secrets(partner)[0]}
        if partner.token_alg == "HS256":  # noqa: S105 (an algorithm's name)
            made["launch"] = partner_secrets.launch_key(partner)
        return await _detail(db_sessionmaker, partner_secrets, partner.slug, made=made)

    @get("/{slug:str}", name="partners.detail")
    async def detail(
        self, db_sessionmaker: Sessionmaker, partner_secrets: NamedDependency[PartnerSecrets], slug: FromPath[str]
    ) -> Template:
        return await _detail(db_sessionmaker, partner_secrets, slug)

    @get("/{slug:str}/edit", name="partners.edit")
    async def edit(
        self, db_session: DbSession, partner_secrets: NamedDependency[PartnerSecrets], slug: FromPath[str]
    ) -> Template:
        partner = await found(db_session, slug)
        public_key = partner_secrets.launch_key(partner) if partner.token_alg != "HS256" else ""  # noqa: S105
        form = {
            "slug": partner.slug,
            "name": partner.name,
            "origins": "\n".join(partner.allowed_origins),
            "return_urls": "\n".join(partner.return_urls),
            "token_alg": partner.token_alg,
            "token_key": public_key,
            "webhook_url": partner.webhook_url or "",
            "logo_url": partner.logo_url or "",
            "primary_color": partner.primary_color,
            "theme_mode": partner.theme_mode,
        }
        return Template("embed/admin/edit.html", context={"form": form, "editing": True, "algorithms": ALGORITHMS})

    @post("/{slug:str}/enabled", name="partners.enabled", status_code=303)
    async def set_enabled(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        slug: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect:
        enabled = data.get("enabled") == "1"
        async with db_sessionmaker() as session, session.begin():
            if await set_enabled(session, slug, enabled=enabled) is None:
                raise NotFoundException()
        action = "partner_enabled" if enabled else "partner_disabled"
        await audit.append(db_sessionmaker, actor=request.user.email, action=action, detail=slug)
        return Redirect(request.app.route_reverse("partners.detail", slug=slug), status_code=303)

    @post("/{slug:str}/rotate/{kind:str}", name="partners.rotate", status_code=200)
    async def rotate(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        partner_secrets: NamedDependency[PartnerSecrets],
        slug: FromPath[str],
        kind: FromPath[str],
    ) -> Template:
        """A new webhook or HS256 launch secret, shown once; the old one still counts for the grace period."""
        if kind not in ROTATIONS:
            raise NotFoundException()
        rotate, action = ROTATIONS[kind]
        async with db_sessionmaker() as session, session.begin():
            made = await rotate(session, slug, partner_secrets)
        if made is None:
            raise NotFoundException()
        await audit.append(db_sessionmaker, actor=request.user.email, action=action, detail=slug)
        return await _detail(db_sessionmaker, partner_secrets, slug, made={kind: made})

    @post("/{slug:str}/events/{event_id:str}/resend", name="partners.resend", status_code=303)
    async def resend(
        self,
        request: SignedInRequest,
        db_sessionmaker: Sessionmaker,
        webhooks: NamedDependency[WebhookSender],
        slug: FromPath[str],
        event_id: FromPath[str],
    ) -> Redirect:
        async with db_sessionmaker() as session, session.begin():
            partner = await found(session, slug)
            event = await webhooks.resend(session, event_id)
            if event is None or event.partner_id != partner.id:
                raise NotFoundException()
        await audit.append(db_sessionmaker, actor=request.user.email, action="webhook_resent", detail=event_id)
        return Redirect(request.app.route_reverse("partners.detail", slug=slug), status_code=303)
