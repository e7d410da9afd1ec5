"""The console's Policies, Decided, Metrics and Agents (budgets, breaker) pages in the browser.

Each step asserts what the page shows and what the backend then holds.
"""

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import login
from tests.support.console import Console, screenshot, wait_until
from tests.support.console_fixtures import ADA, LEAD, button, keyed, pick, propose
from tests.support.databases import Database
from tests.support.factories import AgentCreds, default_policy_text, make_agent, refund_proposal
from tests.support.servers import OidcProvider

pytestmark = pytest.mark.browser

DEFAULT_POLICY = default_policy_text()
LIMIT_100 = 'decimal("100.00")'


def _current(api: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    return api.get("/v1/policies", headers=admin).json()


def _put_policy(api: httpx.Client, admin: dict[str, str], text: str, comment: str) -> dict[str, Any]:
    r = api.put("/v1/policies", json={"text": text, "comment": comment}, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def _metric(page: Any, value: str) -> None:
    page.locator("[data-testid='stMetricValue']", has_text=value).wait_for()


def test_admin_edits_a_policy_sees_the_error_line_dry_runs_and_saves(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    admin: dict[str, str],
    agent: AgentCreds,
    db: Database,
) -> None:
    before = _current(api, admin)
    # A known starting point whatever other tests set; the session's policy is restored after.
    base = _put_policy(api, admin, DEFAULT_POLICY, "Shipped default: refunds over $100 need a human")
    try:
        login(page, console.url, oidc.issuer, ADA)
        page.get_by_role("link", name="Policies").click()
        page.get_by_text(f"Version {base['version']} by user:ada").wait_for()
        page.get_by_text("agents-execute-refunds-up-to-100-usd").first.wait_for()
        screenshot(page, f"policies-{db.kind}", False)

        page.get_by_role("tab", name="Edit and dry-run").click()
        pick(page, "dry_agent", agent.name)
        # The current version: a $250 refund needs a human.
        button(page, "dry_run").click()
        _metric(page, "propose")
        page.get_by_text(f"Judged under version {base['version']}.").wait_for()

        # A typo: refused at its line and column, nothing saved.
        editor = keyed(page, "policy_text").locator("textarea")
        broken = DEFAULT_POLICY.replace('action == Action::"execute"', 'acton == Action::"execute"', 1)
        line = next(n for n, text in enumerate(broken.splitlines(), 1) if "acton ==" in text)
        editor.fill(broken)
        keyed(page, "policy_comment").locator("input").fill("typo")
        button(page, "policy_save").click()
        page.get_by_text(f"Not saved: line {line}, column 3:").wait_for()
        page.locator("code", has_text=f">{line:5d} |   acton ==").wait_for()
        assert _current(api, admin)["version"] == base["version"]

        # The raised limit, tried on the sample before saving: now no human is needed.
        raised = DEFAULT_POLICY.replace(LIMIT_100, 'decimal("300.00")')
        editor.fill(raised)
        page.get_by_text("Edited, not saved yet.").wait_for()
        button(page, "dry_run").click()
        _metric(page, "execute")
        page.get_by_text("Judged under the edited text.").wait_for()
        assert _current(api, admin)["version"] == base["version"]  # a dry-run changes nothing

        keyed(page, "policy_comment").locator("input").fill("Raise the no-human limit to $300")
        button(page, "policy_save").click()
        page.get_by_text(f"Saved as version {base['version'] + 1}.").wait_for()
        now = _current(api, admin)
        assert now["version"] == base["version"] + 1 and now["text"] == raised
        assert now["comment"] == "Raise the no-human limit to $300" and now["created_by"] == "user:ada"

        # History: the new version first, the previous one a pick away.
        page.get_by_role("tab", name="History").click()
        shown = page.get_by_role("tabpanel").locator("code")
        shown.filter(has_text='decimal("300.00")').wait_for()
        keyed(page, f"policy_version_{base['version'] + 1}").click()
        page.get_by_role("option", name=str(base["version"]), exact=True).click()
        shown.filter(has_text=LIMIT_100).wait_for()
    finally:
        _put_policy(api, admin, before["text"], "Restored after the console test")


def test_lead_annotates_a_rejection_and_reads_the_metrics(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
) -> None:
    rejected = propose(api, agent, 64.0)
    approved = propose(api, agent, 21.0)
    api.post(
        f"/v1/proposals/{rejected['id']}/decisions",
        json={"verdict": "reject", "reason_codes": ["wrong_amount"], "comment": "Order was $46"},
        headers=lead,
    ).raise_for_status()
    api.post(
        f"/v1/proposals/{approved['id']}/decisions", json={"verdict": "approve"}, headers=lead
    ).raise_for_status()
    login(page, console.url, oidc.issuer, LEAD)
    page.get_by_role("link", name="Decided").click()
    keyed(page, "d_agent").locator("input").fill(agent.name)
    page.keyboard.press("Enter")
    page.get_by_text("Wrong amount", exact=True).wait_for()
    page.get_by_text("Order was $46").wait_for()

    keyed(page, "a_labels").locator("input").fill("amount_mismatch, needs_receipt")
    pick(page, "a_severity", "high")
    keyed(page, "a_note").locator("textarea").fill("The agent trusted the customer's figure.")
    button(page, "a_submit").click()
    page.get_by_text("labels: amount_mismatch, needs_receipt").wait_for()
    page.get_by_text("Lee Lead · high").wait_for()
    page.get_by_text("The agent trusted the customer's figure.").wait_for()
    notes = api.get(f"/v1/proposals/{rejected['id']}/annotations", headers=lead).json()["items"]
    assert [(n["labels"], n["severity"], n["author_sub"]) for n in notes] == [
        (["amount_mismatch", "needs_receipt"], "high", "lead")
    ]
    assert notes[0]["note"] == "The agent trusted the customer's figure."

    page.get_by_role("link", name="Metrics").click()
    page.get_by_role("heading", name="Rejections by reason").wait_for()
    charts = page.locator("[data-testid='stVegaLiteChart']")
    wait_until(lambda: charts.count() >= 3, what="three Altair charts")
    charts.locator("canvas, svg").first.wait_for()
    assert "Traceback" not in page.inner_text("body")
    mine = api.get("/v1/metrics/summary", params={"agent": agent.name}, headers=lead).json()["items"]
    assert [(m["approved"], m["rejected"], m["rejections_by_reason"]) for m in mine] == [
        (1, 1, {"wrong_amount": 1})
    ]


def test_admin_sets_a_budget_and_resets_the_tripped_breaker(
    page: Any, console: Console, oidc: OidcProvider, api: httpx.Client, admin: dict[str, str]
) -> None:
    bot = make_agent()
    login(page, console.url, oidc.issuer, ADA)
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("heading", name="Budgets").wait_for()
    pick(page, "agent_pick", bot.name)
    # The form's keys end in the budgets' version (a save draws a fresh form): match the prefix.
    fresh = ":not([data-stale='true'])"
    limit = page.locator(f"[class*='st-key-b_max_proposals_per_day_{bot.id}_']{fresh} input")
    limit.fill("1")
    button(page, "budgets_save").click()
    page.get_by_text("Budgets saved.").wait_for()
    budgets = api.get(f"/v1/agents/{bot.id}/budgets", headers=admin).json()["budgets"]
    assert budgets == [
        {
            "action_type": None,
            "allowed_action_types": None,
            "max_tool_calls_per_task": None,
            "max_tokens_per_task": None,
            "max_proposals_per_day": 1,
            "max_cost_usd_per_day": None,
            "hard": False,
        }
    ]

    # The second proposal of the day crosses the budget: the breaker trips, dials capped at draft.
    for amount in (10.0, 11.0):
        r = api.post("/v1/proposals", json=refund_proposal(amount), headers=bot.headers)
        assert r.status_code == 201, r.text
    assert r.json()["mode"] == "draft"
    tripped = api.get(f"/v1/agents/{bot.id}", headers=admin).json()
    assert tripped["breaker_reason"] == "budget_exceeded:max_proposals_per_day"

    page.reload()
    page.get_by_role("heading", name="Budgets").wait_for()
    pick(page, "agent_pick", bot.name)
    page.locator("[data-testid='stAlert']", has_text="over its budget: proposals per day").wait_for()
    page.get_by_text("Used today: 2 proposals").wait_for()
    keyed(page, f"breaker_reason_{bot.id}").locator("input").fill("Budget was a test; back to normal")
    button(page, "breaker_reset").click()
    page.get_by_text("Breaker reset: the dials apply again.").wait_for()
    page.get_by_text("Closed: the dials apply as set.").wait_for()
    assert api.get(f"/v1/agents/{bot.id}", headers=admin).json()["breaker_tripped_at"] is None
    assert keyed(page, f"breaker_reason_{bot.id}").count() == 0  # the reason box is gone

    # Emptied, the limit is gone for good (it used to snap back to 1 and trip again).
    limit.fill("")
    button(page, "budgets_save").click()
    page.get_by_text("Budgets saved.").wait_for()
    assert api.get(f"/v1/agents/{bot.id}/budgets", headers=admin).json()["budgets"] == []
    # Streamlit may still be swapping the rerun's form for the old one: wait for one box.
    expect(limit).to_have_count(1)
    assert limit.input_value() == "" and limit.get_attribute("placeholder") == "no limit"
    r = api.post("/v1/proposals", json=refund_proposal(12.0), headers=bot.headers)
    assert r.status_code == 201 and "budget_exceeded:max_proposals_per_day" not in r.json()["flags"]
    assert api.get(f"/v1/agents/{bot.id}", headers=admin).json()["breaker_tripped_at"] is None
    events = api.get(
        "/v1/audit", params={"subject": f"agent:{bot.id}", "action": "breaker.reset"}, headers=admin
    ).json()["items"]
    assert events[0]["data"]["reason"] == "Budget was a test; back to normal"

    # The audit page (admins) finds the reset and verifies the chain it is part of.
    page.get_by_role("link", name="Audit").click()
    page.get_by_text("Chain verified").wait_for()
    assert "Traceback" not in page.inner_text("body")
