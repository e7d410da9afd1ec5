"""Leaving `pending` happens once, through one function, with one audit event."""

import pytest
from sqlmodel import select

from backend.audit import verification
from backend.core.db import read_session, transaction
from backend.proposals import idempotency, placing, transitions
from models.audit import AuditAction, AuditEvent
from models.proposals import Proposal, ProposalCreate, Status
from tests.support.databases import Database
from tests.support.factories import make_agent, refund_proposal


def _pending(amount: float = 500) -> str:
    agent = make_agent()
    body = refund_proposal(amount)
    status, view, _ = placing.create(
        agent.id, ProposalCreate.model_validate(body), idempotency.fingerprint(body), None
    )
    assert status == 201 and view["status"] == "pending", view
    return str(view["id"])


def _events(proposal_id: str, action: AuditAction) -> int:
    with read_session() as session:
        rows = session.exec(
            select(AuditEvent).where(
                AuditEvent.subject == f"proposal:{proposal_id}", AuditEvent.action == action
            )
        ).all()
    return len(rows)


def test_leaving_pending_twice_moves_it_once(db: Database) -> None:
    pid = _pending()
    with transaction() as session:
        first = transitions.leave_pending(
            session,
            pid,
            Status.cancelled,
            actor="system:test",
            action=AuditAction.PROPOSAL_CANCELLED,
            data={},
        )
        second = transitions.leave_pending(
            session, pid, Status.rejected, actor="system:test", action=AuditAction.PROPOSAL_DECIDED, data={}
        )
    assert (first, second) == (True, False)
    with read_session() as session:
        proposal = session.get(Proposal, pid)
        assert (
            proposal is not None and proposal.status == Status.cancelled and proposal.decided_at is not None
        )
        assert verification.verify_full(session).ok
    assert _events(pid, AuditAction.PROPOSAL_CANCELLED) == 1
    assert _events(pid, AuditAction.PROPOSAL_DECIDED) == 0


def test_pending_can_only_end_in_a_final_status(db: Database) -> None:
    pid = _pending()
    with pytest.raises(ValueError, match="cannot become"), transaction() as session:
        transitions.leave_pending(
            session, pid, Status.executed, actor="user:t", action=AuditAction.PROPOSAL_EXECUTED, data={}
        )


def test_only_an_approved_proposal_finishes(db: Database) -> None:
    pid = _pending()
    with transaction() as session:
        assert not transitions.finish(session, pid, True, actor="system:test", data={})
    assert _events(pid, AuditAction.PROPOSAL_EXECUTED) == 0
