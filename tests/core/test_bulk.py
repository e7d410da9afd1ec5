"""bulk.insert_rows: rows written in one statement read back exactly as the ORM would write them."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from backend.core import bulk
from backend.core.db import read_session, transaction
from models.common import new_id, utcnow
from models.idempotency import IdempotencyRecord
from models.proposals import Proposal
from tests.support.databases import Database
from tests.support.factories import make_agent

PROPOSALS = Proposal.__table__  # type: ignore[attr-defined]
KEYS = IdempotencyRecord.__table__  # type: ignore[attr-defined]


def _proposal(agent_id: str, n: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "agent_id": agent_id,
        "action_type": "refund",
        "action_type_version": 1,
        "summary": f"Refund {n} \u2014 caf\u00e9 \U0001f600 \"quoted\" 'single' $1 %s",
        "payload": {"amount_usd": 10.5 + n, "nested": {"list": [1, "two", None, True]}, "n": n},
        "evidence": [{"kind": "message", "content": "<script>alert(1)</script>\n\\backslash"}],
        "context": {},
        "status": "pending",
        "mode": "approve",
        "dial": "approve",
        "policy_version": None,
        "policy_outcome": "propose",
        "policy_ids": ["refund-needs-human"],
        "flags": [],
        "idempotency_key": None,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(hours=1),
        "decided_at": None,
        "claimed_by": None,
        "claimed_by_name": None,
        "claim_expires_at": None,
    }


def test_rows_read_back_as_written(db: Database) -> None:
    agent = make_agent()
    rows = [_proposal(agent.id, n) for n in range(3)]
    with transaction() as session:
        bulk.insert_rows(session.connection(), PROPOSALS, rows)
    with read_session() as session:
        stored = {p.id: p for p in session.scalars(select(Proposal).where(Proposal.agent_id == agent.id))}
    # Rows with no events behind them: gone again, so the session's database still verifies
    # (backend/audit/verification.py cross-checks every proposal) and queues stay as expected.
    with transaction() as session:
        session.execute(delete(Proposal).where(Proposal.agent_id == agent.id))  # type: ignore[arg-type]
    assert set(stored) == {row["id"] for row in rows}
    for row in rows:
        got = stored[row["id"]]
        for name in (
            "summary",
            "payload",
            "evidence",
            "context",
            "policy_ids",
            "flags",
            "status",
            "decided_at",
        ):
            assert getattr(got, name) == row[name], name
        assert got.created_at == row["created_at"] and got.expires_at == row["expires_at"]


def test_constraint_violation_raises_integrity_error_and_stores_nothing(db: Database) -> None:
    agent = make_agent()
    now = utcnow()
    key = {"agent_id": agent.id, "key": "dup", "request_hash": "h", "status_code": 201}
    first = {**key, "response_body": "{}", "created_at": now}
    with transaction() as session:
        bulk.insert_rows(session.connection(), KEYS, [first])
    fresh = [_proposal(agent.id, 9)]
    with pytest.raises(IntegrityError), transaction() as session:
        bulk.insert_rows(session.connection(), PROPOSALS, fresh)
        bulk.insert_rows(session.connection(), KEYS, [{**first, "response_body": '{"again": 1}'}])
    with read_session() as session:
        assert session.get(Proposal, fresh[0]["id"]) is None  # rolled back with the failed insert
        kept = session.get(IdempotencyRecord, (agent.id, "dup"))
        assert kept is not None and kept.response_body == "{}"


def test_large_batches_are_split_under_the_parameter_limit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Six columns per row and room for 20 parameters: three rows per statement, seven statements.
    monkeypatch.setattr(bulk, "_MAX_PARAMETERS", 20)
    agent = make_agent()
    now = utcnow()
    rows = [
        {"agent_id": agent.id, "key": f"k{n}", "request_hash": "h", "status_code": 201,
         "response_body": str(n), "created_at": now}
        for n in range(20)
    ]  # fmt: skip
    with transaction() as session:
        bulk.insert_rows(session.connection(), KEYS, rows)
    with read_session() as session:
        stored = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.agent_id == agent.id))
        assert sorted(r.response_body for r in stored) == sorted(str(n) for n in range(20))
