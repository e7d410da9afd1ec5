"""Finding a proposal by id, as a reviewer (any) or as its agent (only its own)."""

from sqlmodel import Session

from backend.core.errors import not_found
from models.proposals import Proposal


def load_for_agent(
    session: Session, agent_id: str, proposal_id: str, *, for_update: bool = False
) -> Proposal:
    """An agent sees only its own proposals; another's is as good as missing. ``for_update``
    as for :func:`load`."""
    proposal = session.get(
        Proposal, proposal_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if proposal is None or proposal.agent_id != agent_id:
        raise not_found("proposal", proposal_id)
    return proposal


def load(session: Session, proposal_id: str, *, for_update: bool = False) -> Proposal:
    """The proposal or 404. ``for_update`` locks its row until the transaction ends
    (PostgreSQL; SQLite's writers are serialised already), so what is read next about it,
    its decisions above all, cannot change underneath."""
    proposal = session.get(
        Proposal, proposal_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if proposal is None:
        raise not_found("proposal", proposal_id)
    return proposal
