"""Finding a proposal by id, as a reviewer (any) or as its agent (only its own)."""

from sqlmodel import Session

from backend.core.errors import not_found
from models.proposals import Proposal


def load_for_agent(session: Session, agent_id: str, proposal_id: str) -> Proposal:
    """An agent sees only its own proposals; another's is as good as missing."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.agent_id != agent_id:
        raise not_found("proposal", proposal_id)
    return proposal


def load(session: Session, proposal_id: str) -> Proposal:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise not_found("proposal", proposal_id)
    return proposal
