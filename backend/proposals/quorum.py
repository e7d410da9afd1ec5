"""Quorum: how many distinct approvals a proposal needs, and which approvals count.

An action type needs ``approvals_required`` approvals (default 1); a ``quorum`` policy may
raise the number for a case (``backend/controls/policy/gate.py`` ``quorum``). Approvals
are ``Decision`` rows while the proposal stays ``pending``; ``Proposal.approval_count``
says how many of the latest ones count: an approver's edit changes what the next
approvers see and restarts the count at that approval.
"""

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from backend.controls.policy import gate
from models.action_types import ActionType
from models.agents import Agent
from models.proposals import Decision, Proposal, Verdict


def required(session: Session, proposal: Proposal, action_type: ActionType, agent: Agent | None) -> int:
    """The approvals this proposal needs: as stored once policy raised it, else the larger
    of the action type's number and the policy's for this case."""
    if proposal.approvals_required is not None:
        return proposal.approvals_required
    base = action_type.approvals_required
    if agent is None:
        return base
    return max(base, gate.quorum(session, agent, action_type, proposal.payload, proposal.context))


def counted(proposal: Proposal, decisions: Sequence[Decision]) -> list[Decision]:
    """The approvals that count towards the quorum, oldest first."""
    approvals = [d for d in decisions if d.verdict == Verdict.approve and d.decided_by == "user"]
    if proposal.approval_count <= 0:
        return []
    return approvals[-proposal.approval_count :]


def effective_payload(proposal: Proposal, decisions: Sequence[Decision]) -> dict[str, Any]:
    """What the next approver approves and the agent executes: the latest approver's edit,
    else the proposal's own payload."""
    for d in reversed(decisions):
        if d.verdict == Verdict.approve and d.edited_payload is not None:
            return d.edited_payload
    return proposal.payload
