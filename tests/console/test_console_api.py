"""The console's read endpoints: queue counts and an agent's history, on both databases."""

import httpx

from tests.support.factories import AgentCreds, make_agent, refund_proposal


def test_queue_counts_pending_soon_and_claimed(
    api: httpx.Client, lead: dict[str, str], reviewer: dict[str, str]
) -> None:
    before = api.get("/v1/queue/counts", headers=lead).json()
    bot = make_agent()
    soon = api.post(
        "/v1/proposals", json=refund_proposal(10.0, expires_in_seconds=600), headers=bot.headers
    ).json()
    api.post("/v1/proposals", json=refund_proposal(20.0), headers=bot.headers).raise_for_status()
    assert api.post(f"/v1/proposals/{soon['id']}/claim", headers=lead).status_code == 200
    after = api.get("/v1/queue/counts", headers=reviewer).json()
    assert after["pending"] == before["pending"] + 2
    assert after["expiring_soon"] == before["expiring_soon"] + 1
    assert after["claimed"] == before["claimed"] + 1
    filtered = api.get("/v1/queue/counts", params={"action_type": "nothing-like-this"}, headers=lead).json()
    assert filtered == {"pending": 0, "expiring_soon": 0, "claimed": 0}
    only_refunds = api.get("/v1/queue/counts", params={"action_type": "refund"}, headers=lead).json()
    assert only_refunds["pending"] == after["pending"]


def test_agent_history_counts_and_latest_decisions(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    ids = [
        api.post("/v1/proposals", json=refund_proposal(5.0 + n), headers=agent.headers).json()["id"]
        for n in range(3)
    ]
    api.post(
        f"/v1/proposals/{ids[0]}/decisions", json={"verdict": "approve"}, headers=lead
    ).raise_for_status()
    api.post(
        f"/v1/proposals/{ids[1]}/decisions",
        json={"verdict": "reject", "reason_codes": ["duplicate"]},
        headers=lead,
    ).raise_for_status()
    by_name = api.get(f"/v1/agents/{agent.name}/history", headers=lead).json()
    by_id = api.get(f"/v1/agents/{agent.id}/history", headers=lead).json()
    assert by_name == by_id
    assert by_name["counts"] == {"approved": 1, "rejected": 1, "pending": 1}
    assert [p["id"] for p in by_name["recent"]] == [ids[1], ids[0]]  # latest decision first


def test_console_reads_need_a_reviewer(api: httpx.Client, agent: AgentCreds) -> None:
    assert api.get("/v1/queue/counts").status_code == 401
    refused = api.get(f"/v1/agents/{agent.id}/history", headers=agent.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "people_only"
    missing = api.get("/v1/agents/no-such-agent/history", headers={"Authorization": "Bearer x"})
    assert missing.status_code == 401


def test_unknown_agent_history_is_404(api: httpx.Client, lead: dict[str, str]) -> None:
    r = api.get("/v1/agents/no-such-agent/history", headers=lead)
    assert r.status_code == 404 and r.json()["error"]["code"] == "resource_missing"


def test_approval_rights_follow_the_policy_and_the_agent(
    api: httpx.Client, lead: dict[str, str], reviewer: dict[str, str], admin: dict[str, str]
) -> None:
    bot = make_agent()
    pid = api.post("/v1/proposals", json=refund_proposal(150.0), headers=bot.headers).json()["id"]
    theirs = api.get(f"/v1/proposals/{pid}/approval-rights", headers=lead).json()
    hers = api.get(f"/v1/proposals/{pid}/approval-rights", headers=reviewer).json()
    assert theirs["approve"] is True and theirs["blocked"] is None
    assert hers["approve"] is False and hers["approver_groups"] == ["support_refunds"]
    # The advice matches what deciding does.
    refused = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=reviewer)
    assert refused.status_code == 403
    api.post(f"/v1/agents/{bot.id}/suspend", json={"reason": "test"}, headers=admin).raise_for_status()
    blocked = api.get(f"/v1/proposals/{pid}/approval-rights", headers=lead).json()
    assert blocked["approve"] is False and "suspended" in blocked["blocked"]
    assert api.get("/v1/proposals/nope/approval-rights", headers=lead).status_code in (404, 422)


def test_history_shows_the_amount_actually_approved(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(399.0), headers=agent.headers).json()["id"]
    edited = {**api.get(f"/v1/proposals/{pid}", headers=lead).json()["payload"], "amount_usd": 150.0}
    api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "edited_payload": edited, "comment": "partial"},
        headers=lead,
    ).raise_for_status()
    recent = api.get(f"/v1/agents/{agent.id}/history", headers=lead).json()["recent"]
    mine = next(r for r in recent if r["id"] == pid)
    assert mine["payload"]["amount_usd"] == 399.0 and mine["final_payload"]["amount_usd"] == 150.0
