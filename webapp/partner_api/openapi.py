"""The partner API's own OpenAPI 3.1 document, generated from its handlers, and the page that reads it to people.

A Litestar app holding the partner API's router alone (never served) describes it, so the document lists this
API only, whatever else the app serves; it is made once per process.
"""

from functools import cache
from typing import Any

from litestar import Litestar, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Template

from webapp.partner_api.problems import API_PREFIX, PROBLEMS
from webapp.partner_api.router import partner_api_router

TITLE = "Cash-out partner API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Read and reconcile the cash-outs placed through your hosted page. Authenticate with an API key: "
    "`Authorization: Bearer cok_…`. Errors are RFC 9457 problem documents (`application/problem+json`)."
)


UNUSED = {name: Provide(lambda: None, sync_to_thread=False) for name in ("db_sessionmaker", "webhooks", "settings")}
"""What the describing app gives its handlers' dependencies (it never handles a request): one provider each, as
Litestar refuses one provider under two names."""


@cache
def partner_openapi() -> dict[str, Any]:
    describing = Litestar(
        route_handlers=[partner_api_router()],
        dependencies=UNUSED,
        openapi_config=OpenAPIConfig(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security=[{"apiKey": []}],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="A partner API key (cok_…)")
                }
            ),
        ),
    )
    document = describing.openapi_schema.to_schema()
    document["paths"] = {path: item for path, item in document["paths"].items() if path.startswith(API_PREFIX)}
    return document


@get(f"{API_PREFIX}/openapi.json", name="partner_api.openapi", include_in_schema=False, media_type="application/json")
async def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the partner API (no key needed: it says nothing about anyone's orders)."""
    return partner_openapi()


@get(f"{API_PREFIX}/docs", name="partner_api.docs", include_in_schema=False)
async def docs_page() -> Template:
    """The API read to people: its routes, parameters, answers and problem codes, drawn on the server."""
    return Template("partner_api/docs.html", context={"api": partner_openapi(), "problems": PROBLEMS})
