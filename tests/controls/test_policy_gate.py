"""The gate's outcome table (docs/policies.md) and what reviewers may approve."""

from itertools import product
from typing import Any

import httpx
import pytest

from backend.controls import breaker
from backend.core.db import transaction
from backend.proposals import idempotency
from backend.proposals import placing as proposals
from models.agents import Agent, Dial
from models.proposals import Decision, ProposalCreate
from tests.support.databases import Database
from tests.support.factories import (
    DENY_POLICY_ID,
    AgentCreds,
    apply_policy,
    make_agent,
    policy_with_deny,
    refund_payload,
    refund_proposal,
)

# Policy outcome -> the refund that reaches it under policy_with_deny().
SAMPLES: dict[str, dict[str, Any]] = {
    "execute": refund_payload(50),
    "propose": refund_payload(150),
    "deny": refund_payload(50, customer_id="cus_blocked"),
}
RANK = {d: d.rank for d in Dial}
STATUS = {Dial.observe: "observed", Dial.draft: "pending", Dial.approve: "pending", Dial.execute: "approved"}


def expected(dial: Dial, outcome: str, tripped: bool) -> tuple[str, str]:
    """The outcome table of docs/policies.md, written out independently of the code under test."""
    if outcome == "deny":
        return "rejected", dial.value
    caps = [dial, Dial.execute if outcome == "execute" else Dial.approve] + ([Dial.draft] if tripped else [])
    mode = min(caps, key=lambda d: RANK[d])
    return STATUS[mode], mode.value


def test_every_dial_policy_outcome_and_breaker_state(fresh_database: Database) -> None:
    version = apply_policy(policy_with_deny(), "table test")
    cases = list(product(Dial, ["deny", "propose", "execute"], [False, True]))
    assert len(cases) == 24
    for dial, outcome, tripped in cases:
        agent = make_agent(dials={"refund": dial})
        if tripped:
            with transaction() as session:
                row = session.get(Agent, agent.id)
                assert row is not None
                breaker.trip(session, row, "test", {})
        body = ProposalCreate.model_validate({**refund_proposal(), "payload": SAMPLES[outcome]})
        status_code, view, _ = proposals.create(agent.id, body, idempotency.body_hash(b"{}"), None)
        case = f"dial={dial.value} outcome={outcome} tripped={tripped}"
        assert status_code == 201, case
        assert (view["status"], view["mode"]) == expected(dial, outcome, tripped), case
        assert view["policy"]["version"] == version, case
        assert view["policy"]["outcome"] == outcome, case
        with transaction() as session:
            decisions = session.query(Decision).filter(Decision.proposal_id == view["id"]).all()
        if outcome == "deny":
            assert view["policy"]["policy_ids"] == [DENY_POLICY_ID], case
            assert [(d.verdict, d.decided_by, d.reason_codes) for d in decisions] == [
                ("reject", "policy", ["policy_denied"])
            ], case
        elif view["status"] == "approved":
            assert [(d.verdict, d.decided_by, d.policy_version) for d in decisions] == [
                ("approve", "policy", version)
            ], case
            assert "agents-execute-refunds-up-to-100-usd" in decisions[0].policy_ids, case
        else:
            assert decisions == [], case


def _propose(api: httpx.Client, agent: AgentCreds, amount: float) -> dict[str, Any]:
    r = api.post("/v1/proposals", json=refund_proposal(amount), headers=agent.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_small_refund_executes_large_waits_observe_observes(
    api: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    current = api.get("/v1/policies", headers=admin).json()["version"]
    executor = make_agent(dials={"refund": Dial.execute})
    small = _propose(api, executor, 50)
    assert (small["status"], small["mode"]) == ("approved", "execute")
    assert small["policy"] == {
        "version": current,
        "outcome": "execute",
        "policy_ids": ["agents-propose-granted-action-types", "agents-execute-refunds-up-to-100-usd"],
    }
    [decision] = small["decisions"]
    assert decision["decided_by"] == "policy" and decision["verdict"] == "approve"
    assert decision["policy_version"] == current
    # Money is a Cedar decimal, so cents compare right on either side of the limit.
    assert _propose(api, executor, 99.99)["status"] == "approved"
    large = _propose(api, executor, 150)
    assert (large["status"], large["mode"], large["policy"]["outcome"]) == ("pending", "approve", "propose")
    assert large["decisions"] == []
    assert _propose(api, executor, 100.01)["status"] == "pending"
    observer = make_agent(dials={"refund": Dial.observe})
    assert _propose(api, observer, 50)["status"] == "observed"


def test_only_support_refunds_may_approve_a_refund(
    api: httpx.Client, db: Database, agent: AgentCreds, reviewer: dict[str, str], lead: dict[str, str]
) -> None:
    pid = _propose(api, agent, 60)["id"]
    refused = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=reviewer)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "insufficient_privilege"
    after = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert after["status"] == "pending" and after["decisions"] == []

    approved = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lead)
    assert approved.status_code == 201, approved.text
    assert approved.json()["policy_ids"] == ["support-refunds-approve-refunds"]
    assert approved.json()["policy_version"] is not None
    assert api.get(f"/v1/proposals/{pid}", headers=lead).json()["status"] == "approved"


def test_a_reviewer_without_the_role_may_still_reject(
    api: httpx.Client, db: Database, agent: AgentCreds, reviewer: dict[str, str]
) -> None:
    """Policy guards approvals; saying no needs no privilege."""
    pid = _propose(api, agent, 60)["id"]
    r = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "reject", "reason_codes": ["wrong_amount"]},
        headers=reviewer,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("amount", [50, 50.0, 42.5])
def test_amount_sent_as_int_or_float_judges_the_same(api: httpx.Client, db: Database, amount: float) -> None:
    executor = make_agent(dials={"refund": Dial.execute})
    assert _propose(api, executor, amount)["status"] == "approved"


def test_turning_a_dial_is_audited_and_takes_effect(
    api: httpx.Client, db: Database, admin: dict[str, str], lead: dict[str, str]
) -> None:
    agent = make_agent()
    assert _propose(api, agent, 50)["status"] == "pending"
    r = api.put(
        f"/v1/agents/{agent.id}/dials/refund", json={"mode": "execute", "reason": "eval passed"}, headers=lead
    )
    assert r.status_code == 403
    r = api.put(
        f"/v1/agents/{agent.id}/dials/refund",
        json={"mode": "execute", "reason": "eval passed"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["grants"] == [{"action_type": "refund", "dial": "execute"}]
    assert _propose(api, agent, 50)["status"] == "approved"
    [event] = [
        e
        for e in api.get("/v1/audit", params={"subject": f"agent:{agent.id}"}, headers=admin).json()["items"]
        if e["action"] == "dial.changed"
    ]
    assert event["actor"] == "user:ada" and event["at"]
    assert event["data"] == {
        "action_type": "refund",
        "from": "approve",
        "to": "execute",
        "reason": "eval passed",
    }


def test_json_numbers_become_cedar_values_that_cannot_break_the_request() -> None:
    from backend.controls.policy.gate import _value

    schema = {"properties": {"amount_usd": {"type": "number"}, "count": {"type": "integer"}}}
    converted = _value(
        {"amount_usd": 50, "count": 3, "ratio": 0.1 + 0.2, "big": 10**30, "nan": float("nan"), "none": None},
        schema,
    )
    assert converted == {
        "amount_usd": {"__extn": {"fn": "decimal", "arg": "50.0000"}},
        "count": 3,
        "ratio": {"__extn": {"fn": "decimal", "arg": "0.3000"}},
        "big": str(10**30),
        "nan": "nan",
    }
