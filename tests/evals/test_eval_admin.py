"""Annotations over HTTP, reason codes managed by admins, and the metrics endpoints."""

import json

import httpx
import pytest

from tests.support.eval_helpers import decide, place
from tests.support.factories import AgentCreds, make_agent, refund_proposal


def test_annotations_are_created_edited_by_their_author_only_and_audited(
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
    reviewer: dict[str, str],
    admin: dict[str, str],
) -> None:
    pending = place(agent.id, refund_proposal(30.0))["id"]
    early = api.post(f"/v1/proposals/{pending}/annotations", json={"labels": ["x"]}, headers=lead)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_decided"
    decide(pending, "reject", ["wrong_amount"], "too much")

    body = {"labels": ["amount", "needs-policy"], "severity": "high", "note": "Agent doubled the amount."}
    created = api.post(f"/v1/proposals/{pending}/annotations", json=body, headers=lead)
    assert created.status_code == 201, created.text
    note = created.json()
    assert note["author_sub"] == "lead" and note["author_name"] == "Lee Lead"
    assert (note["labels"], note["severity"], note["note"]) == (body["labels"], "high", body["note"])

    for bad in ({"labels": ["x"], "severity": "huge"}, {"labels": ["x"], "color": "red"}, {"labels": [" "]}):
        r = api.post(f"/v1/proposals/{pending}/annotations", json=bad, headers=lead)
        assert r.status_code == 422, bad
    assert (
        api.post(f"/v1/proposals/{pending}/annotations", json=body, headers=agent.headers).status_code == 403
    )
    missing = api.post("/v1/proposals/01ARZ3NDEKTSV4RRFFQ69G5FAV/annotations", json=body, headers=lead)
    assert missing.status_code == 404

    edit = {"labels": ["amount"], "severity": "medium", "note": "Only 2x, not a pattern."}
    other = api.patch(f"/v1/annotations/{note['id']}", json=edit, headers=reviewer)
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_author"
    mine = api.patch(f"/v1/annotations/{note['id']}", json=edit, headers=lead)
    assert mine.status_code == 200 and mine.json()["severity"] == "medium"
    assert mine.json()["created_at"] == note["created_at"]

    listed = api.get(f"/v1/proposals/{pending}/annotations", headers=reviewer).json()
    assert [(a["id"], a["note"]) for a in listed["items"]] == [(note["id"], edit["note"])]
    assert listed["next_cursor"] is None
    events = api.get("/v1/audit", params={"subject": f"proposal:{pending}"}, headers=admin).json()["items"]
    actions = [e["action"] for e in events]
    assert "annotation.created" in actions and "annotation.updated" in actions
    updated = next(e for e in events if e["action"] == "annotation.updated")
    assert updated["actor"] == "user:lead" and updated["data"]["before"]["severity"] == "high"


def test_reason_codes_are_added_and_retired_without_losing_history(
    api: httpx.Client, lead: dict[str, str], admin: dict[str, str], db: object
) -> None:
    creds = make_agent()
    url = "/v1/action-types/refund/reason-codes"
    codes = {c["code"] for c in api.get(url, headers=lead).json()["items"]}
    assert {"wrong_amount", "not_eligible", "duplicate", "suspected_prompt_injection", "other"} <= codes

    first = place(creds.id, refund_proposal(20.0))["id"]
    unknown = api.post(
        f"/v1/proposals/{first}/decisions", json={"verdict": "reject", "reason_codes": ["rude"]}, headers=lead
    )
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "unknown_reason_code" and "wrong_amount" in error["message"]
    assert "wrong_amount" in error["valid"] and "rude" not in error["valid"]

    new = f"carrier_fault_{creds.name[-6:]}"
    assert api.post(url, json={"code": new, "label": "Carrier fault"}, headers=lead).status_code == 403
    added = api.post(
        url, json={"code": new, "label": "Carrier fault", "description": "Courier lost it"}, headers=admin
    )
    assert added.status_code == 201, added.text
    again = api.post(url, json={"code": new, "label": "Again"}, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "reason_code_exists"
    bad = api.post(url, json={"code": "Has Spaces", "label": "x"}, headers=admin)
    assert bad.status_code == 422

    ok = api.post(
        f"/v1/proposals/{first}/decisions", json={"verdict": "reject", "reason_codes": [new]}, headers=lead
    )
    assert ok.status_code == 201, ok.text

    retired = api.request(
        "DELETE", f"{url}/{new}", json={"reason": "merged into not_eligible"}, headers=admin
    )
    assert retired.status_code == 200 and retired.json()["retired"] is True
    second = place(creds.id, refund_proposal(21.0))["id"]
    refused = api.post(
        f"/v1/proposals/{second}/decisions", json={"verdict": "reject", "reason_codes": [new]}, headers=lead
    )
    assert refused.status_code == 422 and new not in refused.json()["error"]["valid"]
    listed = {c["code"]: c for c in api.get(url, headers=lead).json()["items"]}
    assert listed[new]["retired"] is True and listed[new]["label"] == "Carrier fault"
    active = {
        c["code"] for c in api.get(url, params={"include_retired": "false"}, headers=lead).json()["items"]
    }
    assert new not in active
    exported = api.get("/v1/evals/export", params={"agent": creds.name}, headers=lead).content.splitlines()
    [case] = [json.loads(line) for line in exported]
    assert case["reason_codes"] == [new]  # history kept
    restored = api.post(f"{url}/{new}/restore", headers=admin)
    assert restored.status_code == 200 and restored.json()["retired"] is False
    assert api.delete(f"{url}/nope", headers=admin).status_code == 404
    events = api.get("/v1/audit", params={"subject": "action_type:refund"}, headers=admin).json()["items"]
    assert {"reason_code.added", "reason_code.retired", "reason_code.restored"} <= {
        e["action"] for e in events
    }


def test_metrics_per_agent_and_action_type(api: httpx.Client, lead: dict[str, str], db: object) -> None:
    creds = make_agent()
    ids = [place(creds.id, refund_proposal(10.0 + i))["id"] for i in range(10)]
    for pid in ids[:6]:
        decide(pid, "approve")
    decide(ids[6], "reject", ["wrong_amount"])
    decide(ids[7], "reject", ["wrong_amount", "duplicate"])
    decide(ids[8], "reject", ["not_eligible"])
    # ids[9] stays pending

    r = api.get("/v1/metrics/summary", params={"agent": creds.name, "action_type": "refund"}, headers=lead)
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert row["agent_name"] == creds.name and row["action_type"] == "refund"
    assert (row["proposals"], row["approved"], row["rejected"]) == (10, 6, 3)
    assert row["approval_rate"] == pytest.approx(6 / 9) and row["rejection_rate"] == pytest.approx(3 / 9)
    assert row["escalation_rate"] == 1.0  # every one went to a human
    assert row["rejections_by_reason"] == {"wrong_amount": 2, "duplicate": 1, "not_eligible": 1}
    assert 0 <= row["time_to_decision_p50_s"] <= row["time_to_decision_p95_s"]
    assert row["policy_violations"] == 0 and row["scenario_pass_rate"] is None

    series = api.get("/v1/metrics/timeseries", params={"agent": creds.name}, headers=lead).json()["items"]
    assert len(series) == 1 and series[0]["proposals"] == 10 and len(series[0]["bucket"]) == 10
    # Table 2's tool calls and tokens per task, from the proposals' context.
    assert (series[0]["tool_calls_per_task"], series[0]["tokens_per_task"]) == (3.0, 1200.0)
    future = api.get(
        "/v1/metrics/summary", params={"agent": creds.name, "since": "2999-01-01T00:00:00Z"}, headers=lead
    )
    assert future.json()["items"] == []
    assert api.get("/v1/metrics/summary", params={"since": "soon"}, headers=lead).status_code == 422
