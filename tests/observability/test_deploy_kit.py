"""The operations kit in deploy/: alert rules checked and unit-tested with promtool, and a
dashboard whose every query names a metric the API exposes."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backend.core.settings import get_settings
from tests.support.servers import ROOT

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "signoff.json"
# The contract's names for the Table 2 controls (as exposed: counters end in _total).
TABLE_2 = {
    "signoff_proposals_total",
    "signoff_task_tool_calls",
    "signoff_task_tokens",
    "signoff_time_to_decision_seconds",
    "signoff_pending",
    "signoff_oldest_pending_age_seconds",
    "signoff_escalations_total",
    "signoff_policy_violations_total",
    "signoff_breaker_trips_total",
    "signoff_breaker_open",
    "signoff_scenario_pass_rate",
    "signoff_webhook_failures_total",
}
METRIC = re.compile(r"\bsignoff_[a-z0-9_]+")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), "promtool is missing: run scripts/ensure-promtool.sh"
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def panel_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(alerts())} rules found" in done.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    for rule in alerts():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never shown firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never shown quiet"


def test_every_alert_has_a_runbook_line_and_an_owner() -> None:
    for rule in alerts():
        assert rule["annotations"]["runbook"].strip(), rule["alert"]
        assert "\n" not in rule["annotations"]["runbook"].strip()
        assert rule["labels"]["team"]


def test_every_table_2_threshold_has_an_alert() -> None:
    names = {m for rule in alerts() for m in METRIC.findall(rule["expr"])}
    for control in TABLE_2 - {"signoff_time_to_decision_seconds", "signoff_breaker_trips_total",
                              "signoff_proposals_total", "signoff_pending"}:
        assert any(n.startswith(control.removesuffix("_total")) for n in names), control


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each panel's query, with Grafana's variables filled in, as a recording rule for promtool."""
    rules = []
    for i, expr in enumerate(panel_queries()):
        concrete = expr.replace("$__rate_interval", "5m").replace('"$agent"', '".*"')
        concrete = concrete.replace('"$action_type"', '".*"')
        rules.append({"record": f"dashboard:panel_{i}", "expr": concrete})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def exposed(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def test_every_dashboard_query_names_an_exposed_metric(api: httpx.Client) -> None:
    names = exposed(api.get("/metrics").text)
    assert names >= TABLE_2
    used = {m for expr in panel_queries() for m in METRIC.findall(expr)}
    assert used, "the dashboard has no queries"
    assert used <= names, used - names
    # And the dashboard shows every Table 2 control.
    for control in TABLE_2:
        assert any(m.startswith(control.removesuffix("_total")) for m in used), control


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SIGNOFF_METRICS_TOKEN", "scrape-secret")
    get_settings.cache_clear()
    yield "scrape-secret"
    monkeypatch.delenv("SIGNOFF_METRICS_TOKEN")
    get_settings.cache_clear()


def test_metrics_can_require_a_token(db: object, metrics_token: str) -> None:
    from backend.app import create_app

    client = TestClient(create_app())  # no lifespan: /metrics needs none
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "metrics_token_required"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert allowed.status_code == 200
    assert "signoff_pending" in allowed.text
