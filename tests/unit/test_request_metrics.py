"""Request metrics: Litestar's Prometheus series (names and labels), counted per route template and status."""

from collections.abc import Iterator

import pytest
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import REGISTRY

from webapp.request_metrics import APP_NAME, RequestMetrics

STREAM = "a_stream"


@get("/things/{thing_id:int}")
async def thing(thing_id: FromPath[int]) -> dict[str, int]:
    if thing_id == 404:
        raise NotFoundException()
    if thing_id == 500:
        raise RuntimeError("broken")
    return {"thing": thing_id}


@get("/skipped/now")
async def skipped() -> str:
    return "not counted"


@get("/streamed", opt={STREAM: True})
async def streamed() -> str:
    return "not counted"


@post("/refused")
async def refused() -> str:
    return "never"


def refusing(app: ASGIApp) -> ASGIApp:
    """A middleware inside the metrics that refuses POSTs, as the CSRF check does."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            raise PermissionDeniedException("refused")
        await app(scope, receive, send)

    return handle


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        [thing, skipped, streamed, refused],
        middleware=[RequestMetrics(skipped=["/skipped/"], exclude_opt_key=STREAM), refusing],
    )
    with TestClient(app) as test_client:
        yield test_client


def value(name: str, path: str, status: int = 200, method: str = "GET") -> float:
    labels = {"method": method, "path": path, "status_code": str(status), "app_name": APP_NAME}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_and_timed_by_route_template_and_status(client: TestClient[Litestar]) -> None:
    route = "/things/{thing_id}"  # as Litestar writes the route template
    before = {status: value("cashout_http_requests_total", route, status) for status in (200, 404, 500)}
    timed = value("cashout_http_request_duration_seconds_count", route)
    errors = value("cashout_http_requests_error_total", route, 500)
    for thing_id in (1, 2, 404, 500):
        client.get(f"/things/{thing_id}")
    assert value("cashout_http_requests_total", route, 200) == before[200] + 2  # two paths, one route
    assert value("cashout_http_requests_total", route, 404) == before[404] + 1
    assert value("cashout_http_requests_total", route, 500) == before[500] + 1
    assert value("cashout_http_request_duration_seconds_count", route) == timed + 2
    assert value("cashout_http_request_duration_seconds_sum", route) > 0
    assert value("cashout_http_requests_error_total", route, 500) == errors + 1  # only server errors
    assert value("cashout_http_requests_error_total", route, 404) == 0
    assert value("cashout_http_requests_in_progress", route) == 0  # each request left it again


def test_excluded_paths_and_marked_routes_are_not_counted(client: TestClient[Litestar]) -> None:
    assert client.get("/skipped/now").status_code == 200
    assert client.get("/streamed").status_code == 200
    assert value("cashout_http_requests_total", "/skipped/now") == 0
    assert value("cashout_http_requests_total", "/streamed") == 0


def test_a_request_refused_by_a_middleware_inside_counts_with_the_status_it_is_answered_with(
    client: TestClient[Litestar],
) -> None:
    before = value("cashout_http_requests_total", "/refused", 403, "POST")
    assert client.post("/refused").status_code == 403
    assert value("cashout_http_requests_total", "/refused", 403, "POST") == before + 1
    assert value("cashout_http_requests_total", "/refused", 200, "POST") == 0
