"""Decisions that must stay in one place, checked in the source so a second copy fails the build."""

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

from litestar.exceptions import HTTPException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.utils.sync import AsyncCallable

from tests.conftest import RsaKeys
from webapp.app import create_app
from webapp.auth.guards import LoginRequired
from webapp.config import Settings
from webapp.embed.access import EmbedRefused
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


def test_live_updates_go_out_only_through_the_owners_commit_subscriber() -> None:
    """After a unit of the one owner of status changes has committed: the `LivePublisher`, registered in the
    composition root, is the only caller of `publish_change`."""
    text = {str(path.relative_to(WEBAPP)): path.read_text() for path in WEBAPP.rglob("*.py")}
    assert [name for name, source in text.items() if "publish_change(" in source] == ["orders/live.py"]
    assert [name for name, source in text.items() if "LivePublisher(" in source] == ["services.py"]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
    return modules


def unit_imports() -> dict[str, set[str]]:
    """Which units of webapp (a package, or a module at its top level) import which others, type-checking imports
    included."""
    imports: dict[str, set[str]] = {}
    for path in WEBAPP.rglob("*.py"):
        unit = path.relative_to(WEBAPP).parts[0].removesuffix(".py")
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "webapp" and len(parts) > 1 and parts[1] != unit:
                imports.setdefault(unit, set()).add(parts[1])
    return imports


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for other in graph.get(unit, ()):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            group = set()
            while (member := stack.pop()) != unit:
                group.add(member)
            if group:
                found.append(group | {unit})

    for unit in list(graph):
        if unit not in index:
            visit(unit)
    return found


def test_circles_are_found() -> None:
    """The check below would see a circle (so its silence means something)."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_two_units_of_webapp_import_each_other_in_a_circle() -> None:
    assert circles(unit_imports()) == []


def test_orders_know_none_of_the_features_that_subscribe_to_them() -> None:
    """The owner of status changes hands its event to subscribers registered in the composition root."""
    assert unit_imports()["orders"] & {"embed", "notifications", "support", "operations", "ipn", "services"} == set()


def test_building_an_email_needs_no_web_layer() -> None:
    assert unit_imports()["notifications"] & {"templating", "app", "errors", "support", "embed"} == set()


def test_production_code_never_imports_the_development_tooling() -> None:
    """Only the command line reaches `webapp/dev/`, and only inside the commands that start it."""
    importers = sorted(
        str(path.relative_to(WEBAPP))
        for path in WEBAPP.rglob("*.py")
        if "dev" not in path.relative_to(WEBAPP).parts[:1]
        and any(m.startswith("webapp.dev") for m in imported_modules(path))
    )
    assert importers == ["__main__.py"]
    module_level = ast.parse((WEBAPP / "__main__.py").read_text()).body
    top_imports = [node for node in module_level if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not any(
        (node.module or "").startswith("webapp.dev") for node in top_imports if isinstance(node, ast.ImportFrom)
    )


def test_the_sessions_person_is_read_in_one_place() -> None:
    """The authentication middleware puts the person on `request.user`; nothing else parses the session for it."""
    readers = sorted(
        str(path.relative_to(WEBAPP)) for path in WEBAPP.rglob("*.py") if "session_user(" in path.read_text()
    )
    assert readers == ["auth/middleware.py", "auth/session.py"]  # the caller, and the definition


def test_every_exception_has_its_own_handler(settings: Settings) -> None:
    """One handler per exception type (errors.py), not one catch-all that sorts them out."""
    handlers = create_app(settings).exception_handlers
    assert {LoginRequired, EmbedRefused, HTTPException, Exception} <= handlers.keys()
    assert len(set(handlers.values())) == len(handlers)


def test_facts_kept_in_one_place_are_not_written_again() -> None:
    """Now, VND as a person reads it, a stored locale's fallback, the sign-in callback's path, how a session keeps a
    dataclass, the partner event names, the verdict words: each once."""
    facts = {
        "def utcnow(": ["db.py"],
        '"VND", locale=': ["i18n.py"],
        "else DEFAULT_LOCALE": ["i18n.py"],
        '"/auth/callback"': ["auth/pending.py"],
        "TypeAlias = NamedDependency[Settings]": ["config.py"],
        "def to_session(": ["sessions.py"],
        "def from_session(": ["sessions.py"],
        '"order.completed"': ["embed/events.py"],
        "Verdict(StrEnum)": ["ipn/service.py", "orders/state.py"],
    }
    for fact, places in facts.items():
        found = sorted(str(path.relative_to(WEBAPP)) for path in WEBAPP.rglob("*.py") if fact in path.read_text())
        assert found == places, fact


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


def test_a_fresh_process_reads_an_order_built_without_a_query(rsa_keys: RsaKeys) -> None:
    """`loaded` makes orders without the ORM (the order page's hot path): the composition root configures the
    mappers, so an instance whose first request comes before any ORM query (its jobs ran elsewhere) serves it."""
    script = (
        "from webapp.config import Settings; from webapp.services import build_services;"
        "from webapp.orders.models import Order; from webapp.orders.storage import loaded;"
        "build_services(Settings());"
        "print(loaded(Order, {'id': 7, 'status': 'SUCCESS'}).id)"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "ALIXPAY_PRIVATE_KEY_FILE": str(rsa_keys.partner.private),
        "ALIXPAY_PUBLIC_KEY_FILES": str(rsa_keys.alix.public),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert done.stdout.strip() == "7", done.stderr[-2000:]
