"""The operators' own tools (docs/ops/): alerting rules valid and unit-tested by promtool, a Grafana dashboard;
every metric they name is one the app exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

import webapp.metrics  # noqa: F401  (registers every metric the app exports)

OPS = Path(__file__).resolve().parents[2] / "docs" / "ops"
PROMTOOL = shutil.which("promtool") or "promtool"  # Debian's `prometheus` package (`make promtool`)


def exported() -> set[str]:
    """The names the app's metrics have in the text format (a counter's `_total`, a histogram's series)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    return {metric.name + suffix for metric in REGISTRY.collect() for suffix in suffixes.get(metric.type, ("",))}


def promtool(*args: str) -> str:
    done = subprocess.run([PROMTOOL, *args], cwd=OPS, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_load_and_their_unit_tests_pass() -> None:
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_metric_an_alert_names_is_one_the_app_exports() -> None:
    named = set(re.findall(r"\b(cashout_[a-z_]+)", (OPS / "alerts.yml").read_text()))
    assert named and named <= exported(), named - exported()


def test_every_dashboard_query_names_metrics_the_app_exports() -> None:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for query in queries for name in re.findall(r"\b(cashout_[a-z_]+)", query)}
    assert len(queries) == len(dashboard["panels"]) >= 10
    assert named <= exported(), named - exported()
