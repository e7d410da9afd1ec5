"""Group commit: proposals placed in one batch still get their own, independent answers."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.agents import keys
from backend.audit import verification
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.proposals import idempotency
from backend.proposals.batch import Placed, Placement
from backend.proposals.idempotency import Stored
from backend.proposals.placement import place_batch
from models.agents import ApiKey
from models.audit import AuditEvent
from models.idempotency import IdempotencyRecord
from models.proposals import Proposal, ProposalCreate
from tests.support.databases import Database
from tests.support.factories import AgentCreds, make_agent, refund_payload, refund_proposal


def _count(model: type, **where: str) -> int:
    with read_session() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(session.execute(stmt).scalar_one())


def _item(
    agent: AgentCreds, key_id: str, amount: float = 42.0, idem: str | None = None, **change: object
) -> Placement:
    body = ProposalCreate.model_validate({**refund_proposal(), "payload": refund_payload(amount), **change})
    return Placement(agent.id, body, f"hash-{amount}-{sorted(change)}", idem, key_id)


def _key_id(agent: AgentCreds) -> str:
    with read_session() as session:
        return keys.authenticate(session, agent.key)[1].id


def test_one_batch_many_answers(db: Database) -> None:
    agent = make_agent()
    key_id = _key_id(agent)
    same = f"k-{uuid.uuid4().hex}"
    items = [
        _item(agent, key_id, 10, idem=same),
        _item(agent, key_id, 10, idem=same),  # the same request again: a replay of the first
        _item(agent, key_id, 11, idem=same),  # another body under that key: refused
        _item(agent, key_id, 12, action_type="no_such_type"),
        _item(agent, key_id, -5),  # fails the payload's schema
        _item(agent, key_id, 13),
    ]
    first, replay, reused, unknown, invalid, last = place_batch(items)
    assert isinstance(first, Placed) and first.status == 201 and not first.replayed
    assert isinstance(replay, Placed) and replay.replayed and replay.body == first.body
    assert isinstance(reused, ApiError) and (reused.status, reused.code) == (409, "idempotency_key_reused")
    assert isinstance(unknown, ApiError) and unknown.code == "unknown_action_type"
    assert isinstance(invalid, ApiError) and (invalid.code, invalid.param) == (
        "invalid_payload",
        "payload.amount_usd",
    )
    assert isinstance(last, Placed) and last.status == 201
    assert _count(Proposal, agent_id=agent.id) == 2
    assert _count(IdempotencyRecord, agent_id=agent.id) == 1
    with read_session() as session:
        assert verification.verify_full(session).ok


def test_a_later_batch_replays_a_key_stored_by_an_earlier_one(db: Database) -> None:
    agent = make_agent()
    key_id = _key_id(agent)
    (first,) = place_batch([_item(agent, key_id, 20, idem="again")])
    (second,) = place_batch([_item(agent, key_id, 20, idem="again")])
    assert isinstance(first, Placed) and isinstance(second, Placed)
    assert second.replayed and second.body == first.body
    assert _count(Proposal, agent_id=agent.id) == 1


def test_a_key_revoked_since_the_request_was_authenticated_is_refused(db: Database) -> None:
    agent = make_agent()
    key_id = _key_id(agent)
    with transaction() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None
        row.revoked_at = row.created_at
        session.add(row)
    (outcome,) = place_batch([_item(agent, key_id)])
    assert isinstance(outcome, ApiError) and outcome.code == "api_key_revoked"
    assert _count(Proposal, agent_id=agent.id) == 0


def test_revoking_a_key_that_just_placed_a_proposal_stops_it_at_once(
    api: httpx.Client, agent: AgentCreds, admin: dict[str, str]
) -> None:
    """The server remembers a recently valid key; the placement's own check must still refuse it."""
    assert api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).status_code == 201
    key = api.get(f"/v1/agents/{agent.id}/keys", headers=admin).json()["items"][0]
    assert api.delete(f"/v1/agents/{agent.id}/keys/{key['id']}", headers=admin).status_code == 200
    refused = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"
    assert _count(Proposal, agent_id=agent.id) == 1


def test_suspending_an_agent_that_just_placed_a_proposal_stops_it_at_once(
    api: httpx.Client, agent: AgentCreds, admin: dict[str, str]
) -> None:
    assert api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).status_code == 201
    assert api.post(f"/v1/agents/{agent.id}/suspend", headers=admin).status_code == 200
    refused = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "agent_suspended")
    assert _count(Proposal, agent_id=agent.id) == 1


def test_a_key_past_its_time_is_free_again(db: Database) -> None:
    agent = make_agent()
    key_id = _key_id(agent)
    (first,) = place_batch([_item(agent, key_id, 30, idem="old")])
    with transaction() as session:
        row = session.get(IdempotencyRecord, (agent.id, "old"))
        assert row is not None
        row.created_at = row.created_at - timedelta(days=2)  # past the 24 h default
        session.add(row)
    (again,) = place_batch([_item(agent, key_id, 31, idem="old")])  # another body: no 409 now
    assert isinstance(first, Placed) and isinstance(again, Placed)
    assert again.status == 201 and not again.replayed and again.body["id"] != first.body["id"]
    assert _count(Proposal, agent_id=agent.id) == 2
    assert _count(IdempotencyRecord, agent_id=agent.id) == 1


def test_a_key_committed_elsewhere_meanwhile_turns_into_a_replay(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica commits our key between our lookup and our commit: the batch fails at
    the primary key, runs again, and answers that item with the other replica's proposal,
    while the rest of the batch is placed once."""
    agent = make_agent()
    key_id = _key_id(agent)
    (elsewhere,) = place_batch([_item(agent, key_id, 40, idem="raced")])
    real_load = idempotency.load_stored
    misses = []

    def stale_once(session: Session, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
        if not misses:  # the first attempt looks before the other replica's commit
            misses.append(pairs)
            return {}
        return real_load(session, pairs)

    monkeypatch.setattr(idempotency, "load_stored", stale_once)
    raced, other = place_batch([_item(agent, key_id, 40, idem="raced"), _item(agent, key_id, 41)])
    assert misses, "the stale lookup was not used"
    assert isinstance(raced, Placed) and raced.replayed and raced.body == elsewhere.body
    assert isinstance(other, Placed) and other.status == 201
    assert _count(Proposal, agent_id=agent.id) == 2
    with read_session() as session:
        assert verification.verify_full(session).ok


def test_concurrent_batches_keep_the_audit_chain_whole(db: Database) -> None:
    """Batches for different agents run at once (no shared guard row): the audit head, taken
    inside the batch's write pipeline, still orders their events into one unbroken chain."""
    agents = [make_agent() for _ in range(3)]
    key_ids = [_key_id(agent) for agent in agents]

    def place_some(n: int) -> list[Placed | Exception]:
        agent, key_id = agents[n % 3], key_ids[n % 3]
        return place_batch([_item(agent, key_id, 50 + n) for _ in range(3)])

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = [o for batch in pool.map(place_some, range(12)) for o in batch]
    assert all(isinstance(o, Placed) and o.status == 201 for o in outcomes), outcomes
    subjects = [f"proposal:{o.body['id']}" for o in outcomes if isinstance(o, Placed)]
    with read_session() as session:
        verified = verification.verify_full(session)
        recorded = session.execute(
            select(AuditEvent.action).where(AuditEvent.subject.in_(subjects))  # type: ignore[attr-defined]
        ).scalars()
        assert sorted(recorded) == sorted(["proposal.created", "policy.evaluated"] * 36)
    assert verified.ok, verified.reason
