"""Eval data out: 200 decided proposals exported over HTTP round-trip, and filters work."""

import csv
import io
import json
from typing import Any

import httpx
import pandas as pd

from backend.catalog import action_types
from backend.core.db import transaction
from backend.evals import export
from models.action_types import ActionTypeUpdate
from models.common import utcnow
from tests.support.eval_helpers import decide, decided_mix, place
from tests.support.factories import AgentCreds, make_agent, refund_proposal


def _export(api: httpx.Client, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    with api.stream("GET", "/v1/evals/export", params=params, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        assert "content-length" not in r.headers  # streamed, not buffered
        lines = [line for line in r.iter_lines() if line]
    return [json.loads(line) for line in lines]


def test_200_decisions_round_trip_and_filters(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    first = decided_mix(agent.id, 100)
    mid = utcnow()
    expected = {**first, **decided_mix(agent.id, 100, prompt="refunds-v4")}
    other = make_agent()
    decide(place(other.id, refund_proposal(5.0))["id"], "reject", ["duplicate"])
    place(agent.id, refund_proposal(7.0))  # pending: not a case

    cases = _export(api, lead, agent=agent.name)
    assert len(cases) == 200
    assert [c["id"] for c in cases] == sorted(expected)
    for case in cases:
        want = expected[case["id"]]
        body = want["body"]
        assert case["schema_version"] == 1
        assert case["action_type"] == "refund" and case["agent_name"] == agent.name
        assert case["payload"] == body["payload"]
        assert case["evidence"] == body["evidence"]
        assert case["context"] == body["context"]
        assert case["summary"] == body["summary"]
        assert (case["model"], case["prompt_version"]) == (
            body["context"]["model"],
            body["context"]["prompt_version"],
        )
        assert case["tool_schema_version"] == "7"
        assert case["verdict"] == want["verdict"]
        assert case["reason_codes"] == want["codes"]
        assert case["comment"] == want["comment"]
        assert case["edited_payload"] == want["edited"]
        if want["verdict"] == "approve":
            assert case["final_payload"] == (want["edited"] or body["payload"])
        else:
            assert case["final_payload"] is None
        assert case["decided_by"] == "user" and case["reviewer_sub"] == "lead"
        assert [(a["labels"], a["severity"], a["note"]) for a in case["annotations"]] == [
            (a["labels"], a["severity"], a["note"]) for a in want["annotations"]
        ]
        assert case["policy_outcome"] in {"propose", "execute"}
        assert case["time_to_decision_s"] >= 0
        assert case["decided_at"] >= case["created_at"]
        assert case["masked_fields"] == []

    rejected = _export(api, lead, agent=agent.name, verdict="reject")
    assert {c["id"] for c in rejected} == {k for k, v in expected.items() if v["verdict"] == "reject"}
    assert len(rejected) == 100
    approved = _export(api, lead, agent=agent.name, verdict="approve")
    assert len(approved) == 100 and all(c["verdict"] == "approve" for c in approved)
    wrong = _export(api, lead, agent=agent.name, reason_code="duplicate")
    assert {c["id"] for c in wrong} == {k for k, v in expected.items() if "duplicate" in v["codes"]}
    assert wrong and all("duplicate" in c["reason_codes"] for c in wrong)
    since = _export(api, lead, agent=agent.name, since=mid.isoformat())
    assert {c["id"] for c in since} == set(expected) - set(first)
    until = _export(api, lead, agent=agent.name, until=mid.isoformat())
    assert {c["id"] for c in until} == set(first)
    assert _export(api, lead, agent=agent.name, action_type="refund", verdict="reject", reason_code="other")
    assert {c["agent_name"] for c in _export(api, lead, reason_code="duplicate", agent=other.name)} == {
        other.name
    }

    text = api.get("/v1/evals/export", params={"agent": agent.name}, headers=lead).text
    frame = pd.read_json(io.StringIO(text), lines=True)  # as docs/eval-data.md shows
    assert len(frame) == 200 and set(export.FIELDS) <= set(frame.columns)
    assert (frame.verdict == "reject").sum() == 100

    r = api.get("/v1/evals/export", params={"agent": agent.name, "format": "csv"}, headers=lead)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 200
    by_id = {c["id"]: c for c in cases}
    for row in rows:
        case = by_id[row["id"]]
        assert json.loads(row["payload"]) == case["payload"]
        assert json.loads(row["reason_codes"]) == case["reason_codes"]
        assert json.loads(row["annotations"]) == case["annotations"]
        assert (json.loads(row["edited_payload"]) if row["edited_payload"] else None) == case[
            "edited_payload"
        ]
        assert row["verdict"] == case["verdict"] and row["comment"] == case["comment"]


def test_export_refuses_bad_input(api: httpx.Client, lead: dict[str, str], agent: AgentCreds) -> None:
    for params, code in [
        ({"format": "xml"}, "invalid_request"),
        ({"since": "yesterday"}, "invalid_request"),
        ({"verdict": "maybe"}, "invalid_request"),
        ({"action_type": "nope"}, "unknown_action_type"),
    ]:
        r = api.get("/v1/evals/export", params=params, headers=lead)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == code
    assert api.get("/v1/evals/export", headers=agent.headers).status_code == 403
    assert api.get("/v1/evals/export").status_code == 401


_CONTACT_SCHEMA = {
    "type": "object",
    "required": ["email", "message"],
    "properties": {
        "email": {"type": "string", "x-pii": True},
        "message": {"type": "string"},
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string", "x-pii": True}, "tier": {"type": "string"}},
        },
    },
}


def test_pii_fields_marked_in_schema_are_masked(
    api: httpx.Client, lead: dict[str, str], admin: dict[str, str], db: object
) -> None:
    with transaction() as session:
        action_types.put(
            session,
            "contact_customer",
            ActionTypeUpdate.model_validate({"payload_schema": _CONTACT_SCHEMA, "approver_role": None}),
            "system:test",
        )
    creds = make_agent(grants=("contact_customer",))
    payload = {"email": "jo@example.com", "message": "Hi", "customer": {"name": "Jo", "tier": "gold"}}
    pid = place(creds.id, {"action_type": "contact_customer", "payload": payload})["id"]
    decide(pid, "approve", comment="typo in the address", edited={**payload, "email": "jo2@example.com"})

    [case] = _export(api, lead, agent=creds.name)
    assert case["payload"] == {
        "email": "***",
        "message": "Hi",
        "customer": {"name": "***", "tier": "gold"},
    }
    assert case["edited_payload"]["email"] == "***"
    assert set(case["masked_fields"]) == {
        "payload.email",
        "payload.customer.name",
        "edited_payload.email",
        "edited_payload.customer.name",
    }
    denied = api.get("/v1/evals/export", params={"agent": creds.name, "mask_pii": "false"}, headers=lead)
    assert denied.status_code == 403
    [raw] = _export(api, admin, agent=creds.name, mask_pii="false")
    assert raw["payload"] == payload and raw["masked_fields"] == []
