"""The timeline page: an edited, approved and executed refund, each step in order; then the
Metrics page draws the Table 2 controls over time with their thresholds."""

from typing import Any

import httpx
import pytest

from tests.support.browser import login
from tests.support.console import Console, screenshot
from tests.support.console_fixtures import LEAD, keyed, propose
from tests.support.databases import Database
from tests.support.factories import AgentCreds
from tests.support.servers import OidcProvider

pytestmark = pytest.mark.browser


def test_the_timeline_of_an_edited_approved_executed_refund_shows_each_step_in_order(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
    db: Database,
) -> None:
    created = propose(api, agent, 250.0)
    pid = created["id"]
    edited = {**created["payload"], "amount_usd": 180.0}
    r = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "comment": "Capped at the order value", "edited_payload": edited},
        headers=lead,
    )
    assert r.status_code == 201, r.text
    report = {"status": "succeeded", "result": {"refund_id": "re_timeline"}}
    assert api.post(f"/v1/proposals/{pid}/execution", json=report, headers=agent.headers).status_code == 201

    login(page, console.url, oidc.issuer, LEAD)
    page.goto(f"{console.url}/review?id={pid}")
    keyed(page, "timeline_link").get_by_role("link", name="Timeline").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    steps = [
        ("Placed by the agent", "tool_calls: 3"),
        ("Policy version", "policy.evaluated"),
        ("Approved with edits by Lee Lead", "Capped at the order value"),
        ("Executed: succeeded", "re_timeline"),
    ]
    for n, (headline, detail) in enumerate(steps):
        step = keyed(page, f"step_{n}")
        step.get_by_text(f"{n + 1}. {headline}", exact=False).wait_for()
        step.get_by_text(detail, exact=False).first.wait_for()
    assert keyed(page, "step_4").count() == 0
    trace_id = created["context"]["trace_id"]
    keyed(page, "trace_id").get_by_text(f"Trace {trace_id}").wait_for()
    # The edited amount is shown, the original stays in the placed step's record.
    keyed(page, "step_2").get_by_text('"amount_usd": 180.0', exact=False).wait_for()
    screenshot(page, f"timeline-{db.kind}", False)
    if db.kind == "sqlite":
        screenshot(page, "timeline", True)

    # The Table 2 controls over time, each chart with its threshold rule.
    page.get_by_role("link", name="Metrics").click()
    page.get_by_role("heading", name="Table 2 controls over time").wait_for()
    for key in ("table2_tool_calls", "table2_tokens", "table2_escalation", "table2_violations"):
        chart = keyed(page, f"{key}").locator("[data-testid='stVegaLiteChart']")
        chart.locator("canvas, svg").first.wait_for()
    assert "Traceback" not in page.inner_text("body")
