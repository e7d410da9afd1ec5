"""Durability, expiry, claims, cancel and the queue's order and pages."""

import threading
import time
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import select

from backend.core.db import read_session, transaction
from models.common import utcnow
from models.proposals import Proposal
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import AgentCreds, make_agent, refund_proposal
from tests.support.servers import ApiServer, OidcProvider


def test_sigkill_during_a_burst_loses_no_acknowledged_proposal(db: Database, oidc: OidcProvider) -> None:
    agent = make_agent()
    server = ApiServer(server_env(db, oidc.issuer))
    acknowledged: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while not stop.is_set():
                try:
                    r = client.post("/v1/proposals", json=refund_proposal(), headers=agent.headers)
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    return
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    while len(acknowledged) < 50:
        time.sleep(0.02)
    server.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert errors, "the server was killed mid-burst, so some requests must have failed"
    with read_session() as session:
        stored = set(session.exec(select(Proposal.id).where(Proposal.agent_id == agent.id)).all())
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} proposals acknowledged with 201 are gone"


def _overdue(pid: str) -> None:
    with transaction() as session:
        session.execute(
            update(Proposal).where(Proposal.id == pid).values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_sweeper_expires_overdue_proposals_and_wakes_waiters(
    api: httpx.Client, agent: AgentCreds, admin: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    _overdue(pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with read_session() as session:
            if session.get(Proposal, pid).status == "rejected":  # type: ignore[union-attr]
                break
        time.sleep(0.1)
    with read_session() as session:
        # The refund's on_expiry is "reject" (the default): the agent learns silence as a refusal.
        assert session.get(Proposal, pid).status == "rejected"  # type: ignore[union-attr]
    state = api.get(f"/v1/proposals/{pid}/decision", params={"wait": 5}, headers=agent.headers).json()
    assert state["status"] == "rejected" and state["decided"] is True
    assert state["decision"]["reason_codes"] == ["expired"]
    events = api.get("/v1/audit", params={"subject": f"proposal:{pid}"}, headers=admin).json()["items"]
    assert events[0]["action"] == "proposal.expired" and events[0]["actor"] == "system"


def test_long_poll_times_out_with_current_state(api: httpx.Client, agent: AgentCreds) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    started = time.monotonic()
    state = api.get(f"/v1/proposals/{pid}/decision", params={"wait": 1}, headers=agent.headers).json()
    assert time.monotonic() - started >= 0.9
    assert state["status"] == "pending" and state["decided"] is False and state["decision"] is None
    r = api.get(f"/v1/proposals/{pid}/decision", params={"wait": 61}, headers=agent.headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "wait"


def test_cancel(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    assert api.post(f"/v1/proposals/{pid}/cancel", headers=agent.headers).json()["status"] == "cancelled"
    assert api.post(f"/v1/proposals/{pid}/cancel", headers=agent.headers).status_code == 200  # idempotent
    r = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lead)
    assert r.status_code == 409
    pid2 = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    api.post(f"/v1/proposals/{pid2}/decisions", json={"verdict": "approve"}, headers=lead)
    assert api.post(f"/v1/proposals/{pid2}/cancel", headers=agent.headers).status_code == 409


def test_execution_needs_approval(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    r = api.post(f"/v1/proposals/{pid}/execution", json={"status": "succeeded"}, headers=agent.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_approved"
    api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "reject", "reason_codes": ["duplicate"]},
        headers=lead,
    )
    r = api.post(f"/v1/proposals/{pid}/execution", json={"status": "succeeded"}, headers=agent.headers)
    assert r.status_code == 409


def test_claims_keep_two_reviewers_apart(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str], reviewer: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    claim = api.post(f"/v1/proposals/{pid}/claim", headers=lead)
    assert claim.status_code == 200 and claim.json()["by"] == "lead"
    assert api.post(f"/v1/proposals/{pid}/claim", headers=lead).status_code == 200  # renew own claim
    taken = api.post(f"/v1/proposals/{pid}/claim", headers=reviewer)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "claimed"
    assert api.delete(f"/v1/proposals/{pid}/claim", headers=reviewer).status_code == 403
    row = next(
        i
        for i in api.get("/v1/queue", params={"agent": agent.name}, headers=lead).json()["items"]
        if i["id"] == pid
    )
    assert row["claim"]["by"] == "lead"
    assert api.delete(f"/v1/proposals/{pid}/claim", headers=lead).status_code == 204
    assert api.post(f"/v1/proposals/{pid}/claim", headers=reviewer).status_code == 200


def test_stale_claim_can_be_taken(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str], reviewer: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    api.post(f"/v1/proposals/{pid}/claim", headers=lead)
    with transaction() as session:
        session.execute(
            update(Proposal)
            .where(Proposal.id == pid)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert api.post(f"/v1/proposals/{pid}/claim", headers=reviewer).json()["by"] == "rita"


def test_queue_orders_by_deadline_and_pages_by_keyset(
    api: httpx.Client, db: Database, lead: dict[str, str]
) -> None:
    agent = make_agent()
    ids = []
    for minutes in (50, 10, 30, 20, 40):
        body = refund_proposal(expires_in_seconds=minutes * 60, summary=f"due in {minutes}")
        ids.append((minutes, api.post("/v1/proposals", json=body, headers=agent.headers).json()["id"]))
    expected = [pid for _, pid in sorted(ids)]
    seen, cursor = [], None
    while True:
        params = {"agent": agent.name, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/queue", params=params, headers=lead).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    found = api.get("/v1/queue", params={"agent": agent.name, "q": "due in 3"}, headers=lead).json()["items"]
    assert [i["summary"] for i in found] == ["due in 30"]
    assert (
        api.get("/v1/queue", params={"agent": agent.id, "action_type": "nothing"}, headers=lead).json()[
            "items"
        ]
        == []
    )
    bad = api.get("/v1/queue", params={"cursor": "!!!"}, headers=lead)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_health_ready_metrics_openapi(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ok" and ready["schema"]
    metrics = api.get("/metrics").text
    assert "signoff_http_requests_total" in metrics
    spec = api.get("/openapi.json").json()
    assert "/v1/proposals/{proposal_id}/decision" in spec["paths"]
