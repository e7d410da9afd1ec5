"""Reading a proposal as its agent or a reviewer sees it, expiring it first if it is due.

Reads take no write lock (SQLite's is one for the whole database); only a proposal found
past its deadline is written, to expire it, so that every reader sees the same final state
the sweep would give it a moment later.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import bindparam
from sqlmodel import Session, select

from backend.agents import keys
from backend.catalog import action_types
from backend.controls import admission
from backend.core.db import WritesStand, read_session, transaction
from backend.core.errors import ApiError
from backend.proposals import quorum, receipts, transitions
from backend.proposals.lookup import load, load_for_agent
from backend.proposals.views import decision_public, proposal_public
from models.agents import Agent
from models.common import utcnow
from models.proposals import Decision, DecisionState, Execution, Proposal, Status

_T = TypeVar("_T")
# Statuses in which a proposal has been approved, so has a receipt.
_RECEIPTED = frozenset({Status.approved, Status.executed, Status.failed})


def expire_if_due(session: Session, proposal: Proposal) -> bool:
    """Expire a pending proposal past its deadline (the check on read)."""
    now = utcnow()
    if proposal.status != Status.pending or proposal.expires_at > now:
        return False
    if not transitions.expire(session, proposal.id, proposal.expires_at, at=now):
        return False
    session.refresh(proposal)
    return True


def still_pending(session: Session, proposal_id: str, expired: str, *, for_update: bool = False) -> Proposal:
    """The proposal, for work that needs it pending (a decision, a claim). One found past its
    deadline is expired, that is committed, and the caller gets 409 ``proposal_expired`` with
    the message ``expired`` (raised as ``WritesStand``: the transaction or savepoint around
    it commits the expiry); one that left ``pending`` already, 409 ``already_decided``."""
    proposal = load(session, proposal_id, for_update=for_update)
    if expire_if_due(session, proposal):
        raise WritesStand(ApiError(409, "proposal_expired", expired))
    if proposal.status != Status.pending:
        raise transitions.already_decided(proposal)
    return proposal


_DECISIONS = (
    select(Decision)
    .where(Decision.proposal_id == bindparam("proposal_id"))  # type: ignore[arg-type]
    .order_by(Decision.created_at, Decision.id)  # type: ignore[arg-type]
)


def decisions_of(session: Session, proposal_id: str) -> list[Decision]:
    return list(session.scalars(_DECISIONS, {"proposal_id": proposal_id}).all())


def full_view(session: Session, proposal: Proposal, unmask: bool = True) -> dict[str, Any]:
    """The proposal with its decisions, execution and quorum progress; ``x-pii`` fields
    masked unless ``unmask``."""
    decisions = decisions_of(session, proposal.id)
    execution = session.get(Execution, proposal.id)
    agent = session.get(Agent, proposal.agent_id)
    action_type = action_types.require(session, proposal.action_type)
    return proposal_public(
        proposal,
        decisions=decisions,
        execution=execution,
        agent_name=agent.name if agent else None,
        now=utcnow(),
        approvals_required=quorum.required(session, proposal, action_type, agent),
        mask_schema=None if unmask else action_type.payload_schema,
    )


def _is_overdue(proposal: Proposal) -> bool:
    return proposal.status == Status.pending and proposal.expires_at <= utcnow()


def _read(
    proposal_id: str,
    agent_id: str | None,
    render: Callable[[Session, Proposal], _T],
    key: keys.KeyRef | None = None,
    snapshot: bool = True,
) -> _T:
    """Read without taking SQLite's write lock; write only when the proposal must expire
    first. Given ``key`` (let in on a moment-old answer), the key and its agent are checked
    for certain first, in the same session. ``snapshot=False`` for a render that needs no
    common snapshot (see ``read_session``)."""
    with read_session(snapshot=snapshot) as session:
        if key is not None:
            agent, kill_switch_engaged = keys.recheck(session, key)
            refusal = admission.refusal(agent, kill_switch_engaged, admission.Asker.agent)
            if refusal is not None:
                raise refusal
        proposal = load_for_agent(session, agent_id, proposal_id) if agent_id else load(session, proposal_id)
        if not _is_overdue(proposal):
            return render(session, proposal)
    with transaction() as session:
        proposal = load(session, proposal_id)
        expire_if_due(session, proposal)
        return render(session, proposal)


def get_view(proposal_id: str, agent_id: str | None = None, unmask: bool = True) -> dict[str, Any]:
    return _read(proposal_id, agent_id, lambda s, p: full_view(s, p, unmask))


def decision_state(session: Session, proposal: Proposal) -> dict[str, Any]:
    """The agent's view of its own proposal (in clear: the values are the agent's, and it
    executes the approved payload). ``payload`` is what was approved: the latest
    approver's edit, else the proposal's own. Approvals short of the quorum are not shown:
    to the agent the proposal is simply still pending. ``receipt`` is the signed approval
    receipt once the proposal has been approved (by the quorum or by policy)."""
    decisions = decisions_of(session, proposal.id) if proposal.decided_at is not None else []
    decision = decisions[-1] if decisions else None
    receipt = None
    if proposal.status in _RECEIPTED:
        found = receipts.for_proposal(session, proposal.id)
        receipt = found.token if found else None
    return DecisionState(
        proposal_id=proposal.id,
        status=proposal.status,
        mode=proposal.mode,
        decided=proposal.status != Status.pending,
        decision=decision_public(decision) if decision else None,
        payload=quorum.effective_payload(proposal, decisions),
        expires_at=proposal.expires_at,
        receipt=receipt,
    ).model_dump(mode="json")


def read_decision_state(
    agent_id: str, proposal_id: str, key: keys.KeyRef | None = None
) -> tuple[dict[str, Any], bool]:
    """The state a long-poller sees, and whether it is final for waiting purposes."""
    # No common snapshot needed: what decision_state reads after the proposal (its decisions
    # once decided, its receipt once approved) was committed with the status it read.
    return _read(
        proposal_id,
        agent_id,
        lambda s, p: (decision_state(s, p), p.status != Status.pending),
        key,
        snapshot=False,
    )
