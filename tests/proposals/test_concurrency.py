"""Exactly one decision and one proposal per idempotency key, whatever the concurrency."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import func, select

from backend.core.db import read_session
from models.proposals import Proposal
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import AgentCreds, refund_proposal
from tests.support.servers import ApiServer, OidcProvider


def _count_proposals(agent_id: str) -> int:
    with read_session() as session:
        return int(
            session.exec(
                select(func.count()).select_from(Proposal).where(Proposal.agent_id == agent_id)
            ).one()
        )


def _decide_concurrently(
    urls: list[str], pid: str, headers: dict[str, str], n: int = 50
) -> list[httpx.Response]:
    bodies = [
        {"verdict": "approve"} if i % 2 == 0 else {"verdict": "reject", "reason_codes": ["wrong_amount"]}
        for i in range(n)
    ]
    clients = [httpx.Client(base_url=u, timeout=60) for u in urls]
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [
                pool.submit(
                    clients[i % len(clients)].post, f"/v1/proposals/{pid}/decisions", json=b, headers=headers
                )
                for i, b in enumerate(bodies)
            ]
            return [f.result() for f in futures]
    finally:
        for c in clients:
            c.close()


def test_fifty_concurrent_decisions_from_threads_make_one(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    responses = _decide_concurrently([str(api.base_url)], pid, lead)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, codes
    assert codes.count(409) == 49, codes
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"already_decided"}
    decisions = api.get(f"/v1/proposals/{pid}", headers=lead).json()["decisions"]
    assert len(decisions) == 1


def test_fifty_concurrent_decisions_across_two_server_processes_make_one(
    api: httpx.Client, db: Database, oidc: OidcProvider, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    second = ApiServer(server_env(db, oidc.issuer))
    try:
        responses = _decide_concurrently([str(api.base_url), second.url], pid, lead)
    finally:
        second.close()
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 1, sorted(codes)
    assert codes.count(409) == 49, sorted(codes)
    winner = next(r for r in responses if r.status_code == 201).json()
    state = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert len(state["decisions"]) == 1
    assert state["decisions"][0]["id"] == winner["id"]
    assert state["status"] == ("approved" if winner["verdict"] == "approve" else "rejected")


def test_twenty_concurrent_creates_with_one_key_make_one_proposal(
    api: httpx.Client, agent: AgentCreds
) -> None:
    body = refund_proposal()
    headers = {**agent.headers, "Idempotency-Key": "retry-storm-1"}
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: api.post("/v1/proposals", json=body, headers=headers), range(20)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    assert len({r.content for r in responses}) == 1  # byte-identical replays
    assert _count_proposals(agent.id) == 1

    changed = {**body, "summary": "something else"}
    reused = api.post("/v1/proposals", json=changed, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert _count_proposals(agent.id) == 1


def test_key_order_and_whitespace_do_not_change_the_request(api: httpx.Client, agent: AgentCreds) -> None:
    body = refund_proposal()
    headers = {**agent.headers, "Idempotency-Key": "order-1", "Content-Type": "application/json"}
    first = api.post("/v1/proposals", json=body, headers=headers)
    import json

    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    second = api.post("/v1/proposals", content=reordered, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["id"] == second.json()["id"]


def test_failed_validation_is_not_stored_under_the_key(api: httpx.Client, agent: AgentCreds) -> None:
    headers = {**agent.headers, "Idempotency-Key": "fix-and-retry"}
    bad = refund_proposal()
    bad["payload"]["amount_usd"] = -5
    assert api.post("/v1/proposals", json=bad, headers=headers).status_code == 422
    good = api.post("/v1/proposals", json=refund_proposal(), headers=headers)
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers


def test_keys_are_scoped_per_agent(api: httpx.Client, db: Database) -> None:
    from tests.support.factories import make_agent

    a, b = make_agent(), make_agent()
    body = refund_proposal()
    ra = api.post("/v1/proposals", json=body, headers={**a.headers, "Idempotency-Key": "shared"})
    rb = api.post("/v1/proposals", json=body, headers={**b.headers, "Idempotency-Key": "shared"})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_malformed_idempotency_key_is_refused(api: httpx.Client, agent: AgentCreds, key: str) -> None:
    r = api.post("/v1/proposals", json=refund_proposal(), headers={**agent.headers, "Idempotency-Key": key})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_idempotency_key"
    assert _count_proposals(agent.id) == 0
