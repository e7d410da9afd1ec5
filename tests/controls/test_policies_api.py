"""Policy versions over HTTP: validation with line numbers, versions, dry runs, denial guard.

Each test changes the global policy, so it gets a database and a server of its own.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from models.agents import Dial
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import (
    DENY_POLICY_ID,
    AgentCreds,
    default_policy_text,
    make_agent,
    policy_with_deny,
    refund_payload,
    refund_proposal,
)
from tests.support.servers import OidcProvider, api_server


@pytest.fixture
def own_api(fresh_database: Database, oidc: OidcProvider) -> Iterator[httpx.Client]:
    with (
        api_server(server_env(fresh_database, oidc.issuer)) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        yield client


def _propose(api: httpx.Client, agent: AgentCreds, amount: float, **payload: Any) -> dict[str, Any]:
    body = refund_proposal(amount)
    body["payload"].update(payload)
    r = api.post("/v1/proposals", json=body, headers=agent.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_invalid_policy_is_refused_and_the_old_version_keeps_working(
    own_api: httpx.Client, admin: dict[str, str], reviewer: dict[str, str]
) -> None:
    api = own_api
    v1 = api.get("/v1/policies", headers=reviewer).json()
    assert v1["version"] == 1 and v1["created_by"] == "system"
    assert v1["text"] == default_policy_text()
    assert "support-refunds-approve-refunds" in v1["policy_ids"]

    broken = default_policy_text().replace("principal.granted.contains(resource) }", "principal.granted.(")
    bad_line = next(n for n, line in enumerate(broken.splitlines(), 1) if "granted.(" in line)
    r = api.put("/v1/policies", json={"text": broken, "comment": "oops"}, headers=admin)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_policy" and error["param"] == "text"
    assert error["type"] == "invalid_request_error"
    assert error["line"] == bad_line and error["message"]
    assert api.put("/v1/policies", json={"text": default_policy_text()}, headers=reviewer).status_code == 403

    # Schema errors: they parse, but would silently match nothing.
    for typo, wanted, token in [
        ('== Action::"execute"', '== Action::"exectue"', 'Action::"exectue"'),
        ('ActionType::"refund"\n)', 'ActionType::"refnd"\n)', 'ActionType::"refnd"'),
        ("principal is Reviewer", "principal is Reviwer", "Reviwer"),
    ]:
        text = default_policy_text().replace(typo, wanted, 1)
        assert text != default_policy_text()
        r = api.put("/v1/policies", json={"text": text}, headers=admin)
        assert r.status_code == 422, (wanted, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_policy" and token.split("::")[0] in error["message"]
        line = text.splitlines()[error["line"] - 1]
        assert line.index(token) + 1 == error["column"], (line, error)

    executor = make_agent(dials={"refund": Dial.execute})
    first = _propose(api, executor, 150)
    assert (first["status"], first["policy"]["version"]) == ("pending", 1)

    raised = default_policy_text().replace('decimal("100.00")', 'decimal("200.00")')
    r = api.put("/v1/policies", json={"text": raised, "comment": "limit 200"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["created_by"] == "user:ada"
    second = _propose(api, executor, 150)
    assert (second["status"], second["policy"]["version"]) == ("approved", 2)
    assert api.get(f"/v1/proposals/{first['id']}", headers=admin).json()["policy"]["version"] == 1

    versions = api.get("/v1/policies/versions", params={"limit": 1}, headers=admin).json()
    assert [v["version"] for v in versions["items"]] == [2] and versions["next_cursor"] == "2"
    older = api.get("/v1/policies/versions", params={"cursor": 2}, headers=admin).json()
    assert [(v["version"], v["comment"]) for v in older["items"]] == [(1, "Shipped default policy")]
    assert api.get("/v1/policies/versions/1", headers=admin).json()["text"] == default_policy_text()
    assert api.get("/v1/policies/versions/9", headers=admin).status_code == 404

    events = api.get("/v1/audit", params={"action": "policy.updated"}, headers=admin).json()["items"]
    assert [(e["actor"], e["data"]["version"]) for e in events] == [("user:ada", 2)]


def test_dry_run_changes_nothing(own_api: httpx.Client, admin: dict[str, str]) -> None:
    api = own_api
    agent = make_agent(dials={"refund": Dial.execute})
    sample = {"agent": agent.name, "action_type": "refund", "payload": refund_payload(50), "context": {}}
    r = api.post(
        "/v1/policies/test",
        json={
            "text": policy_with_deny(),
            "proposal": {**sample, "payload": refund_payload(50, customer_id="cus_blocked")},
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["outcome"] == "deny" and result["version"] is None
    assert result["propose"] == {"decision": "deny", "policy_ids": [DENY_POLICY_ID], "errors": []}

    current = api.post(
        "/v1/policies/test",
        json={"text": None, "proposal": sample, "reviewer": {"groups": ["reviewer"]}},
        headers=admin,
    ).json()
    assert current["outcome"] == "execute" and current["version"] == 1
    assert current["execute"]["policy_ids"] == ["agents-execute-refunds-up-to-100-usd"]
    assert current["approve"]["decision"] == "deny"
    lead = api.post(
        "/v1/policies/test",
        json={"proposal": sample, "reviewer": {"groups": ["support_refunds"]}},
        headers=admin,
    ).json()
    assert lead["approve"] == {
        "decision": "allow",
        "policy_ids": ["support-refunds-approve-refunds"],
        "errors": [],
    }

    busy = default_policy_text() + (
        '@id("no-long-tasks")\nforbid (principal, action == Action::"execute", resource)\n'
        "when { context has tool_calls && context.tool_calls > 20\n"
        '  && context.cost_usd.greaterThan(decimal("0.5")) };\n'
    )
    for tool_calls, outcome in [(3, "execute"), (21, "propose")]:
        r = api.post(
            "/v1/policies/test",
            json={"text": busy, "proposal": {**sample, "context": {"tool_calls": tool_calls, "cost_usd": 1}}},
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["outcome"] == outcome, r.text
    assert r.json()["execute"]["policy_ids"] == ["no-long-tasks"]

    bad = api.post("/v1/policies/test", json={"text": "permit(", "proposal": sample}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_policy"
    assert api.get("/v1/policies", headers=admin).json()["version"] == 1
    assert api.get("/v1/queue", params={"agent": agent.name}, headers=admin).json()["items"] == []


def test_three_denials_in_ten_minutes_trip_the_breaker(own_api: httpx.Client, admin: dict[str, str]) -> None:
    api = own_api
    assert api.put("/v1/policies", json={"text": policy_with_deny()}, headers=admin).status_code == 200
    agent = make_agent(dials={"refund": Dial.execute})
    for n in range(3):
        denied = _propose(api, agent, 50, customer_id="cus_blocked")
        assert denied["status"] == "rejected"
        assert denied["policy"]["policy_ids"] == [DENY_POLICY_ID]
        assert denied["decisions"][0]["reason_codes"] == ["policy_denied"]
        assert ("guard_tripped:policy_denials" in denied["flags"]) == (n == 2)
    held = _propose(api, agent, 50)
    assert (held["status"], held["mode"]) == ("pending", "draft")
    view = api.get(f"/v1/agents/{agent.id}", headers=admin).json()
    assert view["breaker_reason"] == "guard_tripped:policy_denials"
