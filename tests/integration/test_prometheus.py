"""A real Prometheus (Debian's, `make promtool`) with docs/operations.md's scrape block scrapes two instances.

Only the reader's blanks are filled in: the two targets, the token file and the rules file (docs/ops/alerts.yml).
"""

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Cluster
from tests.processes import ROOT, async_wait_for
from webapp.dev.stack import free_port

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DOCUMENTED = re.search(r"```yaml\n(rule_files:.*?)```", (ROOT / "docs" / "operations.md").read_text(), re.S).group(1)
TOKEN = "a-metrics-token-of-at-least-32-characters"


def documented_config(targets: list[str], directory: Path) -> str:
    token_file = directory / "token"
    token_file.write_text(TOKEN)
    config = DOCUMENTED
    for documented, ours in (
        ('"10.0.0.11:8000", "10.0.0.12:8000"', ", ".join(f'"{target}"' for target in targets)),
        ("/etc/prometheus/cashout-metrics-token", str(token_file)),
        ("/etc/prometheus/cashout-alerts.yml", str(ROOT / "docs" / "ops" / "alerts.yml")),
        ("scrape_interval: 15s", "scrape_interval: 1s"),  # so the test need not wait 15 s
    ):
        assert documented in config
        config = config.replace(documented, ours)
    return config


async def test_prometheus_with_the_documented_config_scrapes_both_instances_and_loads_the_rules(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.env["METRICS_TOKEN"] = TOKEN
    with cluster.instance("a") as (url_a, _), cluster.instance("b") as (url_b, _):
        targets = [url.removeprefix("http://") for url in (url_a, url_b)]
        assert httpx.get(f"{url_a}/metrics").status_code == 401  # the token is asked for
        config = tmp_path / "prometheus.yml"
        config.write_text(documented_config(targets, tmp_path))
        port = free_port()
        command = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with (tmp_path / "prometheus.log").open("wb") as log:
            prometheus = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{port}/api/v1"
        try:

            async def scraped(query: str) -> dict[str, str] | None:
                """Each target's value of `query`, once Prometheus has one for both."""
                try:
                    answer = httpx.get(f"{api}/query", params={"query": query}, timeout=2).json()
                except (httpx.HTTPError, ValueError):  # not up yet (503, or no answer)
                    return None
                values = {row["metric"]["instance"]: row["value"][1] for row in answer["data"]["result"]}
                return values if set(values) == set(targets) else None

            assert await async_wait_for(lambda: scraped('up{job="cashout"}'), timeout=30, what="both scraped") == {
                target: "1" for target in targets
            }
            ready = await async_wait_for(lambda: scraped('min by (instance) (cashout_ready{job="cashout"})'))
            assert ready == {target: "1" for target in targets}  # database, schema and keys, per instance
            groups = httpx.get(f"{api}/rules").json()["data"]["groups"]
            assert sum(len(group["rules"]) for group in groups) == 7  # docs/ops/alerts.yml, loaded by the server
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=10)
