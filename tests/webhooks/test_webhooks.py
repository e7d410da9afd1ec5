"""Webhooks end to end: signed (Standard Webhooks), retried, logged, redelivered, executor."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from models.agents import Dial
from signoff.receipts import verify_receipt
from tests.support.factories import AgentCreds, make_agent, refund_payload, refund_proposal
from tests.support.webhook_receiver import HANG, Receiver, eventually


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


@pytest.fixture
def hooks(api: httpx.Client, admin: dict[str, str]) -> Iterator[list[str]]:
    """Endpoints registered by a test, deleted after it so they stop collecting events."""
    ids: list[str] = []
    yield ids
    for hook_id in ids:
        api.delete(f"/v1/webhooks/{hook_id}", headers=admin)


def register(
    api: httpx.Client, admin: dict[str, str], hooks: list[str], url: str, types: list[str]
) -> dict[str, Any]:
    r = api.post("/v1/webhooks", json={"url": url, "event_types": types, "description": "t"}, headers=admin)
    assert r.status_code == 201, r.text
    hooks.append(r.json()["id"])
    return r.json()


def deliveries(api: httpx.Client, admin: dict[str, str], hook_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/webhooks/{hook_id}/deliveries", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def detail(api: httpx.Client, admin: dict[str, str], delivery_id: str) -> dict[str, Any]:
    return api.get(f"/v1/webhooks/deliveries/{delivery_id}", headers=admin).json()


def test_endpoints_are_admin_only_and_show_the_secret_once(
    api: httpx.Client, admin: dict[str, str], lead: dict[str, str], hooks: list[str]
) -> None:
    body = {"url": "http://127.0.0.1:9/x", "event_types": ["proposal.created"]}
    assert api.post("/v1/webhooks", json=body, headers=lead).status_code == 403
    bad = api.post("/v1/webhooks", json={**body, "event_types": ["proposal.nope"]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "event_types"
    assert api.post("/v1/webhooks", json={**body, "url": "ftp://x"}, headers=admin).status_code == 422
    created = register(api, admin, hooks, body["url"], body["event_types"])
    assert created["secret"].startswith("whsec_")
    listed = api.get("/v1/webhooks", headers=admin).json()["items"]
    mine = [h for h in listed if h["id"] == created["id"]]
    assert mine and "secret" not in mine[0]
    assert "secret" not in api.get(f"/v1/webhooks/{created['id']}", headers=admin).json()
    audit = api.get("/v1/audit", params={"subject": f"webhook:{created['id']}"}, headers=admin).json()
    assert created["secret"] not in str(audit)
    assert api.delete(f"/v1/webhooks/{created['id']}", headers=admin).status_code == 204
    assert api.get(f"/v1/webhooks/{created['id']}", headers=admin).status_code == 404


def test_signed_delivery_survives_a_receiver_failing_three_times(
    api: httpx.Client,
    agent: AgentCreds,
    admin: dict[str, str],
    hooks: list[str],
    receivers: list[Receiver],
) -> None:
    receiver = Receiver([500, 500, 500, 200])
    receivers.append(receiver)
    hook = register(api, admin, hooks, receiver.url, ["proposal.created"])
    pid = api.post("/v1/proposals", json=refund_proposal(150), headers=agent.headers).json()["id"]

    assert eventually(lambda: receiver.accepted())
    verifier = Webhook(hook["secret"])
    for request in receiver.requests:
        verifier.verify(request.body, request.headers)  # raises on a bad signature
    assert [r.answered for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one message, retried
    (seen,) = receiver.accepted()
    assert seen.json["type"] == "proposal.created"
    assert seen.json["data"]["proposal_id"] == pid and seen.json["data"]["proposal"]["status"] == "pending"
    with pytest.raises(Exception):  # noqa: B017 - any verification failure
        Webhook(hook["secret"]).verify(seen.body.replace("pending", "approved"), seen.headers)

    (item,) = eventually(
        lambda: [d for d in deliveries(api, admin, hook["id"]) if d["status"] == "succeeded"]
    )
    assert item["attempts"] == 4 and item["last_status_code"] == 200 and item["last_latency_ms"] >= 0
    assert item["event_type"] == "proposal.created" and item["next_attempt_at"] is None
    log = detail(api, admin, item["id"])["attempt_log"]
    assert [(a["number"], a["status_code"]) for a in log] == [(1, 500), (2, 500), (3, 500), (4, 200)]

    again = api.post(f"/v1/webhooks/deliveries/{item['id']}/redeliver", headers=admin)
    assert again.status_code == 202
    assert eventually(lambda: len(receiver.accepted()) == 2)
    assert receiver.accepted()[1].headers["webhook-id"] == item["id"]


def test_a_hanging_receiver_times_out_is_retried_and_does_not_block_the_api(
    api: httpx.Client,
    agent: AgentCreds,
    admin: dict[str, str],
    lead: dict[str, str],
    hooks: list[str],
    receivers: list[Receiver],
) -> None:
    receiver = Receiver([HANG])
    receivers.append(receiver)
    hook = register(api, admin, hooks, receiver.url, ["proposal.created", "proposal.decided"])
    first = api.post("/v1/proposals", json=refund_proposal(150), headers=agent.headers).json()["id"]
    assert eventually(lambda: receiver.requests)  # the receiver now holds the first delivery
    # While it hangs the API answers, and other deliveries still go out.
    second = api.post("/v1/proposals", json=refund_proposal(150), headers=agent.headers)
    assert second.status_code == 201
    decided = api.post(f"/v1/proposals/{first}/decisions", json={"verdict": "approve"}, headers=lead)
    assert decided.status_code == 201
    assert not receiver.release.is_set()

    done = eventually(
        lambda: (
            (items := deliveries(api, admin, hook["id"]))
            and len(items) == 3
            and all(d["status"] == "succeeded" for d in items)
            and items
        )
    )
    assert done, deliveries(api, admin, hook["id"])
    hung = next(d for d in done if d["attempts"] == 2)
    log = detail(api, admin, hung["id"])["attempt_log"]
    assert log[0]["error"] == "timeout" and log[0]["status_code"] is None
    assert log[1]["status_code"] == 200
    assert sorted(d["event_type"] for d in done) == [
        "proposal.created",
        "proposal.created",
        "proposal.decided",
    ]


def _draft_action_type(api: httpx.Client, admin: dict[str, str], executor_url: str) -> str:
    name = f"refund_draft_{uuid.uuid4().hex[:8]}"
    refund = api.get("/v1/action-types/refund", headers=admin).json()
    spec = {
        "description": "Refund, applied by the payments executor",
        "payload_schema": refund["payload_schema"],
        "risk": "high",
        "approver_role": "support_refunds",
        "reason_codes": refund["reason_codes"],
        "executor_webhook": executor_url,
        # The agent sees this much of the executor's answer, no more.
        "result_schema": {"type": "object", "properties": {"refund_id": {"type": "string"}}},
    }
    r = api.put(f"/v1/action-types/{name}", json=spec, headers=admin)
    assert r.status_code == 200, r.text
    return name


def test_draft_mode_executor_webhook_executes_the_approved_payload(
    api: httpx.Client,
    admin: dict[str, str],
    lead: dict[str, str],
    hooks: list[str],
    receivers: list[Receiver],
) -> None:
    executor = Receiver(
        [
            503,  # a transient failure: retried, not executed twice
            (200, {"status": "succeeded", "result": {"refund_id": "re_exec", "ledger": "internal-7"}}),
            (200, {"status": "failed", "error": "card declined"}),
        ]
    )
    receivers.append(executor)
    name = _draft_action_type(api, admin, executor.url)
    hook = register(api, admin, hooks, executor.url, ["proposal.execute"])
    drafter = make_agent(grants=(name,), dials={name: Dial.draft})

    def propose() -> str:
        body = {"action_type": name, "payload": refund_payload(150), "summary": "draft refund"}
        r = api.post("/v1/proposals", json=body, headers=drafter.headers)
        assert r.status_code == 201 and r.json()["mode"] == "draft", r.text
        return r.json()["id"]

    pid = propose()
    refused = api.post(
        f"/v1/proposals/{pid}/execution", json={"status": "succeeded"}, headers=drafter.headers
    )
    assert refused.status_code == 409
    edited = {**refund_payload(150), "amount_usd": 80.0}
    r = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "edited_payload": edited, "comment": "partial refund"},
        headers=lead,
    )
    assert r.status_code == 201, r.text
    view = eventually(
        lambda: (v := api.get(f"/v1/proposals/{pid}", headers=lead).json())["status"] == "executed" and v
    )
    assert view, api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert view["execution"] == {**view["execution"], "status": "succeeded", "reported_by": "executor"}
    assert view["execution"]["result"] == {"refund_id": "re_exec"}  # not the undeclared "ledger"
    Webhook(hook["secret"]).verify(executor.requests[1].body, executor.requests[1].headers)
    sent = executor.requests[1].json
    assert sent["type"] == "proposal.execute" and sent["data"]["payload"] == edited
    assert (
        sent["data"]["decision"]["edited"] is True and sent["data"]["decision"]["reviewer"]["sub"] == "lead"
    )
    # The executor can check what it is asked to run against the receipt, offline.
    claims = verify_receipt(
        sent["data"]["receipt"], api.get("/.well-known/jwks.json").json(), proposal_id=pid, payload=edited
    )
    assert claims["approvers"] == ["lead"] and claims["act"] == name

    second = propose()
    api.post(f"/v1/proposals/{second}/decisions", json={"verdict": "approve"}, headers=lead)
    failed = eventually(
        lambda: (v := api.get(f"/v1/proposals/{second}", headers=lead).json())["status"] == "failed" and v
    )
    assert failed and failed["execution"]["error"] == "card declined"
    assert len(executor.requests) == 3  # one transient failure, then exactly one call per proposal


def test_agent_suspension_is_an_event(
    api: httpx.Client, admin: dict[str, str], hooks: list[str], receivers: list[Receiver]
) -> None:
    receiver = Receiver()
    receivers.append(receiver)
    hook = register(api, admin, hooks, receiver.url, ["agent.suspended"])
    target = make_agent()
    r = api.post(f"/v1/agents/{target.id}/suspend", json={"reason": "spike"}, headers=admin)
    assert r.status_code == 200, r.text
    assert eventually(lambda: receiver.accepted())
    (seen,) = receiver.accepted()
    Webhook(hook["secret"]).verify(seen.body, seen.headers)
    assert seen.json["type"] == "agent.suspended" and seen.json["data"]["agent_id"] == target.id
    assert seen.json["data"]["actor"] == "user:ada"


def test_expiry_by_the_sweeper_is_an_event(
    api: httpx.Client, agent: AgentCreds, admin: dict[str, str], hooks: list[str], receivers: list[Receiver]
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from backend.core.db import transaction
    from models.common import utcnow
    from models.proposals import Proposal

    receiver = Receiver()
    receivers.append(receiver)
    register(api, admin, hooks, receiver.url, ["proposal.expired"])
    pid = api.post("/v1/proposals", json=refund_proposal(150), headers=agent.headers).json()["id"]
    with transaction() as session:  # pretend its deadline passed; the server's sweeper does the rest
        session.execute(
            update(Proposal).where(Proposal.id == pid).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Other tests' proposals may expire meanwhile in the shared database, and a slow answer may
    # bring a redelivery (the same webhook-id): one event for this proposal is what must arrive.
    def mine() -> list:
        return [r for r in receiver.accepted() if r.json["data"]["proposal_id"] == pid]

    assert eventually(mine)
    ids = {next((v for k, v in r.headers.items() if k.lower() == "webhook-id"), None) for r in mine()}
    assert len(ids) == 1, ids
    seen = mine()[0]
    assert seen.json["type"] == "proposal.expired"
    # on_expiry "reject" (the default): the proposal ends rejected, the event says so.
    assert seen.json["data"]["proposal"]["status"] == "rejected" and seen.json["data"]["actor"] == "system"
    assert seen.json["data"]["outcome"] == "rejected"
