"""Placing one proposal in process: a batch of one.

Placement itself (admission, validation, idempotency, gate, effective mode, in the order
``docs/architecture.md`` gives) lives in ``backend/proposals/placement.py``, which places
concurrent requests as one batch; the API hands its requests to the group-commit writer in
``backend/proposals/placer.py``. :func:`create` is for in-process callers (tests, benchmarks).
"""

from typing import Any

from backend.proposals.batch import Placed, Placement
from backend.proposals.placement import place_batch
from models.proposals import ProposalCreate

__all__ = ["Placed", "Placement", "create"]


def create(
    agent_id: str, body: ProposalCreate, request_hash: str, idempotency_key: str | None
) -> tuple[int, dict[str, Any], bool]:
    """Place one proposal. Returns (status code, response body, replayed); raises refusals."""
    (outcome,) = place_batch([Placement(agent_id, body, request_hash, idempotency_key)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome.status, outcome.body, outcome.replayed
