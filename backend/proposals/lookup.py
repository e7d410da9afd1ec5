"""Finding a proposal by id, as a reviewer (any) or as its agent (only its own)."""

from sqlalchemy import bindparam
from sqlmodel import Session, select

from backend.core.errors import not_found
from models.proposals import Proposal

# Built once (``session.get`` builds its statement anew each time it misses): these run on
# every decision, agent's read and execution report. The locked read replaces what the
# session holds of the row (a group commit's session may hold it from an earlier job).
_BY_ID = select(Proposal).where(Proposal.id == bindparam("id"))  # type: ignore[arg-type]
_LOCKED = _BY_ID.with_for_update().execution_options(populate_existing=True)


def _get(session: Session, proposal_id: str, for_update: bool) -> Proposal | None:
    return session.scalars(_LOCKED if for_update else _BY_ID, {"id": proposal_id}).first()


def load_for_agent(
    session: Session, agent_id: str, proposal_id: str, *, for_update: bool = False
) -> Proposal:
    """An agent sees only its own proposals; another's is as good as missing. ``for_update``
    as for :func:`load`."""
    proposal = _get(session, proposal_id, for_update)
    if proposal is None or proposal.agent_id != agent_id:
        raise not_found("proposal", proposal_id)
    return proposal


def load(session: Session, proposal_id: str, *, for_update: bool = False) -> Proposal:
    """The proposal or 404. ``for_update`` locks its row until the transaction ends
    (PostgreSQL; SQLite's writers are serialised already), so what is read next about it,
    its decisions above all, cannot change underneath. It also reads the row afresh, never
    from what the session holds."""
    proposal = _get(session, proposal_id, for_update)
    if proposal is None:
        raise not_found("proposal", proposal_id)
    return proposal
