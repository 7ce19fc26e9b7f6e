"""Decisions that must stay in one place, checked in the source so a second copy fails the build."""

import ast
import inspect
from pathlib import Path

from litestar.middleware.rate_limit import RateLimitConfig
from litestar.utils.sync import AsyncCallable

from webapp.app import create_app
from webapp.config import Settings
from webapp.ratelimits import exempt_key, limits, rate_limit_configs

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
STATUS_OWNER = WEBAPP / "orders" / "transitions.py"


def assignments_to(attribute: str, path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    targets = [
        target
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    ]
    flat = [element for target in targets for element in (target.elts if isinstance(target, ast.Tuple) else [target])]
    assigned = [node.lineno for node in flat if isinstance(node, ast.Attribute) and node.attr == attribute]
    return assigned + keyword_writes(attribute, tree)


def keyword_writes(attribute: str, tree: ast.AST) -> list[int]:
    """`….update(…, status=…)` and `….values(status=…)`: a column written through SQL rather than an attribute."""
    return [
        keyword.value.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if node.func.attr in ("update", "values")
        for keyword in node.keywords
        if keyword.arg == attribute
    ]


def test_only_the_one_owner_changes_an_order_status() -> None:
    """The sandbox keeps its own orders; in the app, an order's status is written in transitions.py alone (as an
    attribute or a column of an UPDATE)."""
    writers = {
        str(path.relative_to(WEBAPP)): lines
        for path in WEBAPP.rglob("*.py")
        if "sandbox" not in path.parts and (lines := assignments_to("status", path))
    }
    assert writers == {str(STATUS_OWNER.relative_to(WEBAPP)): writers.get("orders/transitions.py", [])}
    assert writers["orders/transitions.py"], "the owner itself must still be found by this check"


def test_only_the_one_owner_publishes_live_updates() -> None:
    callers = [
        path.relative_to(WEBAPP)
        for path in WEBAPP.rglob("*.py")
        if "publish_change(" in path.read_text() and path.name != "live.py"
    ]
    assert [str(path) for path in callers] == ["orders/transitions.py"]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
    return modules


def test_the_alix_pay_layer_has_no_web_imports() -> None:
    for path in (WEBAPP / "alixpay").rglob("*.py"):
        modules = imported_modules(path)
        assert not {name.split(".")[0] for name in modules} & {"litestar", "jinja2", "sqlmodel", "sqlalchemy"}, path
        assert all(name.startswith("webapp.alixpay") for name in modules if name.startswith("webapp")), path


def test_per_request_hooks_are_coroutines(settings: Settings) -> None:
    """Litestar runs a plain-function guard, throttle check or before-send hook in a worker thread, on every
    request it applies to: a thread hop each, for work that never blocks."""
    app = create_app(settings)
    limits = rate_limit_configs(settings)
    hooks = [*app.before_send, *(limit.check_throttle_handler for limit in limits)]
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            hooks += handler.resolve_guards()
    assert len(hooks) > 20
    assert [hook for hook in hooks if not inspect.iscoroutinefunction(hook)] == []
    sync_check = RateLimitConfig(rate_limit=("minute", 1), check_throttle_handler=bool)
    assert isinstance(sync_check.check_throttle_handler, AsyncCallable)  # what a plain function would become


def test_a_rate_limit_steps_aside_at_once_on_routes_outside_it(settings: Settings) -> None:
    """Its middleware would otherwise build a request and ask its check on every request of the app."""
    app = create_app(settings)
    marks = {
        (handler.name, limit.name): handler.opt.get(exempt_key(limit))
        for route in app.routes
        for handler in getattr(route, "route_handlers", [getattr(route, "route_handler", None)])
        for limit in limits(settings)
    }
    assert marks["ipn.alixpay", "ipn"] is False and marks["ipn.alixpay", "sign-in"] is True
    assert marks["orders.create", "orders"] is False and marks["home.index", "orders"] is True
    assert set(marks.values()) == {True, False}  # every route marked (never None), for every limit
    configs = zip(rate_limit_configs(settings), limits(settings), strict=True)
    assert all(config.exclude_opt_key == exempt_key(limit) for config, limit in configs)
