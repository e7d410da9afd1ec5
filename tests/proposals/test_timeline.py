"""GET /v1/proposals/{id}/timeline: one proposal's story, in order, with the trace id."""

import httpx

from backend.core.db import transaction
from backend.proposals import timeline
from backend.webhooks import service as webhooks
from models.webhooks import WebhookCreate
from tests.support.databases import Database
from tests.support.eval_helpers import place
from tests.support.factories import AgentCreds, make_agent, refund_proposal


def test_an_edited_approved_executed_refund_reads_in_order(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    body = refund_proposal(250.0)
    created = api.post("/v1/proposals", json=body, headers=agent.headers).json()
    pid = created["id"]
    edited = {**body["payload"], "amount_usd": 200.0}
    decided = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "comment": "capped", "edited_payload": edited},
        headers=lead,
    )
    assert decided.status_code == 201, decided.text
    report = {"status": "succeeded", "result": {"refund_id": "re_9"}}
    assert api.post(f"/v1/proposals/{pid}/execution", json=report, headers=agent.headers).status_code == 201

    r = api.get(f"/v1/proposals/{pid}/timeline", headers=lead)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["event"] for i in items] == [
        "proposal.created",
        "policy.evaluated",
        "proposal.decided",
        "proposal.executed",
    ]
    placed, judged, decision, executed = items
    assert placed["actor"] == f"agent:{agent.id}"
    assert placed["data"]["context"]["tool_calls"] == 3
    assert [e["title"] for e in placed["data"]["evidence"]] == ["Customer email", "Order", "lookup_order"]
    assert judged["data"]["version"] >= 1 and "policy_ids" in judged["data"]
    assert decision["actor"] == "user:lead"
    assert decision["data"]["decision"]["reviewer"]["name"] == "Lee Lead"
    assert decision["data"]["decision"]["edited_payload"]["amount_usd"] == 200.0
    assert executed["data"]["execution"]["result"] == {"refund_id": "re_9"}
    # Without tracing, the trace is the one the agent named in its context.
    assert {i["trace_id"] for i in items} == {body["context"]["trace_id"]}
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)

    # The agent reads its own; another agent finds nothing.
    assert api.get(f"/v1/proposals/{pid}/timeline", headers=agent.headers).status_code == 200
    other = make_agent()
    missing = api.get(f"/v1/proposals/{pid}/timeline", headers=other.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


def test_webhook_deliveries_follow_the_event_that_queued_them(fresh_database: Database) -> None:
    bot = make_agent()
    with transaction() as session:
        hook = WebhookCreate(url="http://127.0.0.1:9/hook", event_types=["proposal.created"])
        webhooks.create(session, hook, "user:ada")
    view = place(bot.id, refund_proposal(250.0))
    items = timeline.get_timeline(view["id"])["items"]
    events = [i["event"] for i in items]
    assert events == ["proposal.created", "policy.evaluated", "webhook.delivery"]
    assert items[-1]["data"]["event_type"] == "proposal.created"
    assert items[-1]["data"]["status"] == "pending"
