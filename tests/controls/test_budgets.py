"""Budgets and guards trip the breaker; only an admin resets it; both are audited."""

from typing import Any

import httpx

from models.agents import Dial
from tests.support.databases import Database
from tests.support.factories import AgentCreds, make_agent, refund_proposal


def _propose(api: httpx.Client, agent: AgentCreds, amount: float = 50, **context: Any) -> dict[str, Any]:
    body = refund_proposal(amount)
    body["context"].update(context)
    r = api.post("/v1/proposals", json=body, headers=agent.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _agent(api: httpx.Client, admin: dict[str, str], agent: AgentCreds) -> dict[str, Any]:
    return dict(api.get(f"/v1/agents/{agent.id}", headers=admin).json())


def test_tool_call_burst_trips_breaker_until_admin_reset(
    api: httpx.Client, db: Database, admin: dict[str, str], reviewer: dict[str, str]
) -> None:
    agent = make_agent(dials={"refund": Dial.execute})
    put = api.put(
        f"/v1/agents/{agent.id}/budgets",
        json={"budgets": [{"action_type": "refund", "max_tool_calls_per_task": 10}]},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    assert put.json()["budgets"][0]["max_tool_calls_per_task"] == 10
    assert _propose(api, agent, tool_calls=5)["status"] == "approved"

    burst = _propose(api, agent, tool_calls=40)
    assert (burst["status"], burst["mode"]) == ("pending", "draft")
    assert "budget_exceeded:max_tool_calls_per_task" in burst["flags"]
    tripped = _agent(api, admin, agent)
    assert tripped["breaker_tripped_at"] is not None
    assert tripped["breaker_reason"] == "budget_exceeded:max_tool_calls_per_task"

    # Within budget again, but the breaker holds: a human decides.
    held = _propose(api, agent, tool_calls=5)
    assert (held["status"], held["mode"]) == ("pending", "draft")
    assert held["flags"] == []

    refused = api.post(f"/v1/agents/{agent.id}/breaker/reset", json={"reason": "x"}, headers=reviewer)
    assert refused.status_code == 403
    reset = api.post(f"/v1/agents/{agent.id}/breaker/reset", json={"reason": "tool fixed"}, headers=admin)
    assert reset.status_code == 200, reset.text
    assert reset.json()["breaker_tripped_at"] is None
    assert _propose(api, agent, tool_calls=5)["status"] == "approved"

    events = api.get("/v1/audit", params={"subject": f"agent:{agent.id}"}, headers=admin).json()["items"]
    actions = [e["action"] for e in reversed(events)]
    assert actions.count("breaker.tripped") == 1 and actions.count("breaker.reset") == 1
    assert actions.index("breaker.tripped") < actions.index("breaker.reset")
    reset_event = next(e for e in events if e["action"] == "breaker.reset")
    assert reset_event["actor"] == "user:ada" and reset_event["data"]["reason"] == "tool fixed"


def test_tool_call_spike_over_three_times_the_median_trips(
    api: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    agent = make_agent(dials={"refund": Dial.execute})
    for _ in range(10):
        assert _propose(api, agent, tool_calls=4)["status"] == "approved"
    assert _propose(api, agent, tool_calls=12)["status"] == "approved"  # 3x the median: not over
    spike = _propose(api, agent, tool_calls=13)
    assert (spike["status"], spike["mode"]) == ("pending", "draft")
    assert spike["flags"] == ["guard_tripped:tool_call_spike"]
    assert _agent(api, admin, agent)["breaker_reason"] == "guard_tripped:tool_call_spike"


def test_daily_proposal_and_cost_budgets(api: httpx.Client, db: Database, admin: dict[str, str]) -> None:
    agent = make_agent(dials={"refund": Dial.execute})
    budget = {"max_proposals_per_day": 2, "max_cost_usd_per_day": 1.0}
    assert (
        api.put(f"/v1/agents/{agent.id}/budgets", json={"budgets": [budget]}, headers=admin).status_code
        == 200
    )
    assert _propose(api, agent, cost_usd=0.4)["status"] == "approved"
    assert _propose(api, agent, cost_usd=0.4)["status"] == "approved"
    third = _propose(api, agent, cost_usd=0.4)
    assert third["status"] == "pending"
    assert third["flags"] == ["budget_exceeded:max_proposals_per_day", "budget_exceeded:max_cost_usd_per_day"]
    view = api.get(f"/v1/agents/{agent.id}/budgets", headers=admin).json()
    assert view["usage_today"]["proposals"] == 3
    assert abs(view["usage_today"]["cost_usd"] - 1.2) < 1e-6
    assert view["budgets"] == [
        {
            "action_type": None,
            "allowed_action_types": None,
            "max_tool_calls_per_task": None,
            "max_tokens_per_task": None,
            "max_proposals_per_day": 2,
            "max_cost_usd_per_day": 1.0,
            "hard": False,
        }
    ]


def test_budget_put_refuses_bad_input(api: httpx.Client, db: Database, admin: dict[str, str]) -> None:
    agent = make_agent()
    for body, code in [
        ({"budgets": [{"action_type": "nope"}]}, "unknown_action_type"),
        ({"budgets": [{}, {}]}, "duplicate_budget"),
        ({"budgets": [{"max_tokens_per_task": -1}]}, "invalid_request"),
        ({"budgets": [{"max_tokens": 5}]}, "unknown_field"),
    ]:
        r = api.put(f"/v1/agents/{agent.id}/budgets", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    assert api.get(f"/v1/agents/{agent.id}/budgets", headers=admin).json()["budgets"] == []


def test_concurrent_proposals_cannot_slip_under_a_daily_budget(
    api: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    agent = make_agent(dials={"refund": Dial.execute})
    budget = {"action_type": "refund", "max_proposals_per_day": 5}
    assert (
        api.put(f"/v1/agents/{agent.id}/budgets", json={"budgets": [budget]}, headers=admin).status_code
        == 200
    )
    with ThreadPoolExecutor(max_workers=10) as pool:
        created = list(pool.map(lambda _: _propose(api, agent), range(30)))
    within = [p for p in created if not p["flags"]]
    assert len(within) == 5
    assert all(p["status"] == "approved" for p in within)
    over = [p for p in created if p["flags"]]
    assert all(p["flags"] == ["budget_exceeded:max_proposals_per_day"] for p in over)
    # The first over-budget proposal tripped the breaker; it and every later one wait for a human.
    assert all((p["status"], p["mode"]) == ("pending", "draft") for p in over)
    tripped = [
        e
        for e in api.get("/v1/audit", params={"subject": f"agent:{agent.id}"}, headers=admin).json()["items"]
        if e["action"] == "breaker.tripped"
    ]
    assert len(tripped) == 1
