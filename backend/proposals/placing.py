"""Placing a proposal, and loading one: the entry points the routes and tests use.

Placement itself (admission, validation, idempotency, gate, effective mode, in the order
of DESIGN.md section 2) lives in ``placement``, which places concurrent requests as one
batch; :func:`create` is a batch of one, for in-process callers.
"""

import hashlib
from typing import Any

import orjson
from sqlmodel import Session

from backend.core.errors import not_found
from backend.proposals.batch import Placed, Placement
from backend.proposals.placement import place_batch
from models.proposals import Proposal, ProposalCreate

__all__ = ["Placed", "Placement", "body_hash", "create", "load", "load_for_agent"]


def body_hash(raw: bytes) -> str:
    """Fingerprint of a request body, insensitive to key order and whitespace."""
    try:
        canonical = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def create(
    agent_id: str, body: ProposalCreate, request_hash: str, idempotency_key: str | None
) -> tuple[int, dict[str, Any], bool]:
    """Place one proposal. Returns (status code, response body, replayed); raises refusals."""
    (outcome,) = place_batch([Placement(agent_id, body, request_hash, idempotency_key)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome.status, outcome.body, outcome.replayed


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
