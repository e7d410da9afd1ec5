"""The whole loop: propose with evidence, review, long-poll, execute, audit."""

import threading
import time

import httpx

from tests.support.factories import AgentCreds, refund_proposal


def test_refund_is_proposed_approved_executed_and_audited(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str], admin: dict[str, str]
) -> None:
    body = refund_proposal(42.5)
    created = api.post("/v1/proposals", json=body, headers={**agent.headers, "Idempotency-Key": "k1"})
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert proposal["status"] == "pending"
    assert proposal["mode"] == "approve"
    assert proposal["evidence"][0]["content"].startswith("My blender")
    pid = proposal["id"]

    queue = api.get("/v1/queue", params={"agent": agent.name}, headers=lead).json()
    assert [item["id"] for item in queue["items"]] == [pid]

    seen: dict[str, object] = {}

    def long_poll() -> None:
        r = api.get(f"/v1/proposals/{pid}/decision", params={"wait": 20}, headers=agent.headers)
        seen["state"] = r.json()
        seen["at"] = time.monotonic()

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)
    decided_at = time.monotonic()
    decision = api.post(
        f"/v1/proposals/{pid}/decisions", json={"verdict": "approve", "comment": "ok"}, headers=lead
    )
    assert decision.status_code == 201, decision.text
    assert decision.json()["reviewer_sub"] == "lead"
    assert decision.json()["reviewer_groups"] == ["reviewer", "support_refunds"]
    waiter.join(10)
    state = seen["state"]
    assert isinstance(state, dict)
    assert state["status"] == "approved" and state["decided"] is True
    assert state["payload"] == body["payload"]
    assert float(seen["at"]) - decided_at < 2.0  # woken by the decision, not by the 20 s timeout

    report = {"status": "succeeded", "result": {"refund_id": "re_1"}}
    first = api.post(f"/v1/proposals/{pid}/execution", json=report, headers=agent.headers)
    assert first.status_code == 201, first.text
    again = api.post(f"/v1/proposals/{pid}/execution", json=report, headers=agent.headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = api.post(
        f"/v1/proposals/{pid}/execution", json={"status": "failed", "error": "x"}, headers=agent.headers
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "execution_already_reported"

    final = api.get(f"/v1/proposals/{pid}", headers=agent.headers).json()
    assert final["status"] == "executed"
    assert final["execution"]["result"] == {"refund_id": "re_1"}
    assert [d["verdict"] for d in final["decisions"]] == ["approve"]

    events = api.get("/v1/audit", params={"subject": f"proposal:{pid}"}, headers=admin).json()["items"]
    actions = [e["action"] for e in reversed(events)]
    assert actions == ["proposal.created", "policy.evaluated", "proposal.decided", "proposal.executed"]
    assert events[1]["actor"] == "user:lead"
    verify = api.get("/v1/audit/verify", headers=admin).json()
    assert verify["ok"] is True and verify["events"] >= 4
