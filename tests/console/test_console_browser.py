"""The console in headless Chromium against real console, API and OIDC provider processes.

Each step asserts what the page shows and what the backend then holds.
"""

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import login
from tests.support.console import Console, screenshot, wait_until
from tests.support.console_fixtures import ADA, LEAD, RITA, keyed, pick
from tests.support.console_fixtures import button as _button
from tests.support.console_fixtures import propose as _propose
from tests.support.console_fixtures import state as _state
from tests.support.databases import Database
from tests.support.factories import AgentCreds, make_agent, refund_proposal
from tests.support.servers import ApiServer, OidcProvider

pytestmark = pytest.mark.browser

# Injected URLs point at a port nothing listens on; any request to it is a failure.
TRAP = "127.0.0.1:9"


def _open(page: Any, console: Console, pid: str) -> None:
    page.goto(f"{console.url}/review?id={pid}")
    page.get_by_text("Proposed action").wait_for()


def test_lead_approves_rejects_and_edits_with_a_diff(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
    db: Database,
) -> None:
    first = _propose(api, agent, 42.5)
    second = _propose(api, agent, 75.0)
    third = _propose(api, agent, 180.0)
    login(page, console.url, oidc.issuer, LEAD)
    # The queue is the landing page; what a lead may not do is not offered.
    page.get_by_text("Pending", exact=True).wait_for()
    assert page.get_by_role("link", name="Agents").count() == 0
    page.locator("[class*='st-key-open_'] button").first.wait_for()
    screenshot(page, f"queue-{db.kind}", False)

    _open(page, console, first["id"])
    page.get_by_text("My blender arrived cracked").wait_for()
    page.get_by_text("42.50 USD").first.wait_for()
    claim = wait_until(lambda: _state(api, first["id"], lead)["claim"], what="claim on open")
    assert claim["by"] == "lead"
    screenshot(page, f"review-{db.kind}", False)
    _button(page, "approve").click()
    done = wait_until(
        lambda: _state(api, first["id"], lead)["status"] == "approved" and True, what="approval"
    )
    assert done
    decision = _state(api, first["id"], lead)["decisions"][0]
    assert decision["verdict"] == "approve" and decision["reviewer_sub"] == "lead"
    # The next item opens at once, without going back to the queue (the approved one's summary
    # stays on the page only in the agent's history, not as the case's heading).
    page.get_by_role("heading", name=first["summary"], exact=True).wait_for(state="detached")
    _button(page, "approve").wait_for()

    _open(page, console, second["id"])
    page.get_by_role("tab", name="Reject").click()
    keyed(page, f"r_{second['id']}").click()
    page.get_by_role("option", name="Wrong amount").click()
    page.keyboard.press("Escape")
    keyed(page, "reject_note").locator("textarea").fill("Order total does not match")
    _button(page, "reject").click()
    wait_until(lambda: _state(api, second["id"], lead)["status"] == "rejected", what="rejection")
    rejected = _state(api, second["id"], lead)["decisions"][0]
    assert rejected["reason_codes"] == ["wrong_amount"]
    assert rejected["comment"] == "Order total does not match"

    _open(page, console, third["id"])
    page.get_by_role("tab", name="Edit and approve").click()
    keyed(page, f"e_{third['id']}_amount_usd").locator("input").fill("120")
    keyed(page, f"e_{third['id']}_amount_usd").locator("input").press("Enter")
    diff = page.locator("code", has_text="+ Amount (USD): 120.00 USD")
    diff.wait_for()
    assert "- Amount (USD): 180.00 USD" in diff.inner_text()
    keyed(page, f"edit_reason_{third['id']}").locator("input").fill("Partial refund agreed")
    screenshot(page, f"edit-diff-{db.kind}", False)
    _button(page, "approve_edit").click()
    wait_until(lambda: _state(api, third["id"], lead)["status"] == "approved", what="edited approval")
    edited = _state(api, third["id"], lead)["decisions"][0]
    assert edited["edited_payload"]["amount_usd"] == 120
    assert _state(api, third["id"], lead)["payload"]["amount_usd"] == 180.0  # the original stays


def test_reviewer_without_refund_rights_is_refused(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    reviewer: dict[str, str],
) -> None:
    proposal = _propose(api, agent, 60.0)
    login(page, console.url, oidc.issuer, RITA)
    _open(page, console, proposal["id"])
    # Told before clicking (tests/console/test_console_defects.py has the rest of that story).
    page.get_by_text("You cannot approve this refund.").wait_for()
    assert _button(page, "approve").is_disabled()
    assert _state(api, proposal["id"], reviewer)["status"] == "pending"
    # The backend refuses it too, whatever the page offers.
    direct = api.post(
        f"/v1/proposals/{proposal['id']}/decisions", json={"verdict": "approve"}, headers=reviewer
    )
    assert direct.status_code == 403 and direct.json()["error"]["code"] == "insufficient_privilege"
    assert page.get_by_role("link", name="Agents").count() == 0
    # Opening took the claim; leaving the review screen gives it back.
    assert _state(api, proposal["id"], reviewer)["claim"]["by"] == "rita"
    page.get_by_role("link", name="Queue").click()
    wait_until(lambda: _state(api, proposal["id"], reviewer)["claim"] is None, what="claim released")


def test_an_item_someone_else_is_reviewing_is_not_offered(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
    reviewer: dict[str, str],
) -> None:
    proposal = _propose(api, agent, 33.0)
    assert api.post(f"/v1/proposals/{proposal['id']}/claim", headers=lead).status_code == 200
    login(page, console.url, oidc.issuer, RITA)
    _open(page, console, proposal["id"])
    page.get_by_text("Lee Lead is reviewing this.").wait_for()
    assert keyed(page, "approve").count() == 0
    assert _state(api, proposal["id"], reviewer)["claim"]["by"] == "lead"


def test_a_token_the_api_refuses_asks_to_log_in_again(
    page: Any, server: ApiServer, oidc: OidcProvider
) -> None:
    # A console whose ID tokens the API does not accept (another audience): not "expired" (only
    # token_expired says that) but the server's own reason, and a way to log in again.
    other = Console(server.url, oidc.issuer, "another-client")
    try:
        login(page, other.url, oidc.issuer, LEAD)
        page.get_by_text("The server refused your login:").wait_for()
        assert page.get_by_text("Your session expired").count() == 0
        assert page.get_by_role("button", name="Log in again").count() == 1
        assert "Traceback" not in page.inner_text("body")
    finally:
        other.close()


def test_admin_turns_a_dial_and_suspends_an_agent(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    admin: dict[str, str],
    db: Database,
) -> None:
    bot = make_agent()
    pending = _propose(api, bot, 30.0)
    login(page, console.url, oidc.issuer, ADA)
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("heading", name="Dials").wait_for()
    pick(page, "agent_pick", bot.name)
    # The agent's rerun may still be drawing: pick() reopens a list it closed.
    pick(page, f"dial_{bot.id}_refund", "draft")
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("refund from approve to draft").wait_for()
    keyed(dialog, "dial_reason").locator("input").fill("New prompt version under test")
    _button(dialog, "dial_confirm").click()
    page.get_by_text("Dial for refund set to draft.").wait_for()
    agent_now = api.get(f"/v1/agents/{bot.id}", headers=admin).json()
    assert agent_now["grants"] == [{"action_type": "refund", "dial": "draft"}]
    events = api.get(
        "/v1/audit", params={"subject": f"agent:{bot.id}", "action": "dial.changed"}, headers=admin
    )
    assert events.json()["items"][0]["data"]["reason"] == "New prompt version under test"
    # Escape on the dialog: nothing applied, and the select shows the dial as it stands.
    pick(page, f"dial_{bot.id}_refund", "execute")
    page.get_by_role("dialog").get_by_text("refund from draft to execute").wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")
    shown = keyed(page, f"dial_{bot.id}_refund").locator("input")
    wait_until(lambda: shown.input_value() == "draft", what="the select back on the applied dial")
    assert api.get(f"/v1/agents/{bot.id}", headers=admin).json()["grants"][0]["dial"] == "draft"
    screenshot(page, f"agents-{db.kind}", False)

    # A new key is shown once, then only its prefix; revoking it takes effect at once.
    _button(page, "key_create").click()
    shown = page.locator("code", has_text="so_").first
    shown.wait_for()
    new_key = shown.inner_text().strip()
    as_new_key = {"Authorization": f"Bearer {new_key}"}
    assert api.get(f"/v1/proposals/{pending['id']}", headers=as_new_key).status_code == 200
    listed = api.get(f"/v1/agents/{bot.id}/keys", headers=admin).json()["items"]
    created = next(k for k in listed if new_key.startswith(k["prefix"]))
    _button(page, "key_ack").click()
    shown.wait_for(state="detached")
    _button(page, f"revoke_{created['id']}").click()
    _button(page.get_by_role("dialog"), "revoke_confirm").click()
    wait_until(
        lambda: next(
            k
            for k in api.get(f"/v1/agents/{bot.id}/keys", headers=admin).json()["items"]
            if k["id"] == created["id"]
        )["revoked_at"],
        what="key revoked",
    )
    assert api.get(f"/v1/proposals/{pending['id']}", headers=as_new_key).status_code == 401

    _button(page, "suspend").click()
    assert api.get(f"/v1/agents/{bot.id}", headers=admin).json()["suspended"] is False  # asks first
    keyed(page.get_by_role("dialog"), f"sus_reason_{bot.id}_1").locator("input").fill("Runaway refunds")
    _button(page.get_by_role("dialog"), "sus_confirm").click()
    page.get_by_text("Suspended: every request of this agent is refused.").wait_for()
    assert api.get(f"/v1/agents/{bot.id}", headers=admin).json()["suspended"] is True
    refused = api.post("/v1/proposals", json=refund_proposal(10.0), headers=bot.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agent_suspended"
    # Its pending proposal can no longer be approved, and the page says why.
    _open(page, console, pending["id"])
    page.get_by_text("The agent is suspended; its proposals cannot be approved.").wait_for()
    assert _button(page, "approve").is_disabled()  # said before the click, not after
    assert "Traceback" not in page.inner_text("body")
    assert _state(api, pending["id"], admin)["status"] == "pending"


def test_hostile_evidence_renders_inert(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    db: Database,
) -> None:
    hostile = [
        {
            "kind": "message",
            "title": "<b>bold title</b>",
            "content": f"<script>fetch('http://{TRAP}/s')</script>",
        },
        {"kind": "message", "title": "beacon", "content": f"![x](http://{TRAP}/beacon.png) look"},
        {"kind": "message", "title": "link", "content": "[click me](javascript:alert(1)) now"},
        {"kind": "message", "title": "img", "content": f'<img src="http://{TRAP}/i.png" onerror="alert(1)">'},
        {"kind": "message", "title": "rtl", "content": "invoice\u202egpj.exe"},
        {"kind": "document", "title": "huge", "content": "A" * 900_000},
        {"kind": "record", "title": "json", "content": {"html": f"<img src='http://{TRAP}/j.png'>"}},
    ]
    proposal = _propose(
        api,
        agent,
        20.0,
        summary=f"Refund ![t](http://{TRAP}/summary.png) <script>x</script>",
        evidence=hostile,
    )
    trapped: list[str] = []
    page.on("request", lambda r: trapped.append(r.url) if TRAP in r.url else None)
    login(page, console.url, oidc.issuer, LEAD)
    _open(page, console, proposal["id"])
    page.get_by_text("Showing the first 20,000 of 900,000 characters.").wait_for()
    page.wait_for_load_state("networkidle")
    # Shown literally, as text ...
    page.get_by_text("<script>fetch(").first.wait_for()
    page.get_by_text("[click me](javascript:alert(1))").first.wait_for()
    page.get_by_text("invoice[U+202E]gpj.exe").first.wait_for()
    # ... and never as elements or requests.
    assert page.locator(f"img[src*='{TRAP}']").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    assert page.locator("script", has_text=TRAP).count() == 0
    assert page.locator("b", has_text="bold title").count() == 0
    assert page.locator("[onerror]").count() == 0
    assert trapped == []
    screenshot(page, f"hostile-{db.kind}", False)


def test_a_case_opens_from_a_filtered_queue(
    page: Any, console: Console, oidc: OidcProvider, api: httpx.Client, agent: AgentCreds
) -> None:
    """The queue's filters live in the URL (bookmarkable); opening a case from a chosen view
    used to crash, as Streamlit refused to clear a query string its widgets were bound to."""
    # Due soon: first in the queue, whatever else the shared database holds.
    body = refund_proposal(61.0, expires_in_seconds=90, summary="Refund 61.00 for a filtered view")
    case = api.post("/v1/proposals", json=body, headers=agent.headers).json()
    login(page, console.url, oidc.issuer, LEAD)
    page.get_by_text("Pending", exact=True).wait_for()
    pick(page, "view", "All pending")
    page.wait_for_function("() => location.search.includes('view=All')")
    keyed(page, f"open_{case['id']}").get_by_role("button").click()
    page.get_by_role("heading", name="Proposed action").wait_for()
    page.get_by_text("Refund 61.00 for a filtered view").first.wait_for()
    assert f"id={case['id']}" in page.url
    assert "Traceback" not in page.inner_text("body")
    assert page.locator("[data-testid='stException']").count() == 0


def test_drafts_survive_a_reload(
    page: Any,
    console: Console,
    oidc: OidcProvider,
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
) -> None:
    """Half-typed decisions are in the URL: a reload keeps the reasons picked, the comment and
    the approval's comment, and nothing is decided until the reviewer says so."""
    case = _propose(api, agent, 44.0)
    login(page, console.url, oidc.issuer, LEAD)
    _open(page, console, case["id"])
    keyed(page, "approve_note").locator("input").fill("Checked the order history")
    keyed(page, "approve_note").locator("input").press("Enter")
    # Each draft lands in the URL with its own rerun; the next is typed once it has, so no
    # rerun in flight meets a half-typed widget.
    page.wait_for_function("() => location.search.includes('approve_note=')")
    page.get_by_role("tab", name="Reject").click()
    keyed(page, f"r_{case['id']}").click()
    page.get_by_role("option", name="Wrong amount").click()
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => new URLSearchParams(location.search).has('r_{case['id']}')")
    keyed(page, "reject_note").locator("textarea").fill("Customer paid 40, not 44")
    keyed(page, "reject_note").locator("textarea").press("Tab")
    page.wait_for_function("() => location.search.includes('reject_note=')")
    page.reload()
    page.get_by_text("Proposed action").wait_for()
    expect(keyed(page, "reject_note").locator("textarea")).to_have_value("Customer paid 40, not 44")
    expect(keyed(page, f"r_{case['id']}")).to_contain_text("Wrong amount")
    page.get_by_role("tab", name="Approve", exact=True).click()
    expect(keyed(page, "approve_note").locator("input")).to_have_value("Checked the order history")
    assert _state(api, case["id"], lead)["status"] == "pending"
