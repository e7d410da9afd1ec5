"""Bulk decisions: one request, many proposals, each decided as if alone.

Each proposal gets its own transaction through ``decisions.decide``, so every rule applies
to it (quorum, separation of duties, claims, policy) and one item's refusal never undoes
another's decision; the answer reports each item's HTTP status and decision or error.
"""

from typing import Any

from backend.auth.oidc import User
from backend.core.errors import ApiError
from backend.proposals import decisions
from models.proposals import BulkDecisionCreate, DecisionCreate


def decide_many(user: User, body: BulkDecisionCreate) -> dict[str, Any]:
    one = DecisionCreate(verdict=body.verdict, reason_codes=body.reason_codes, comment=body.comment)
    items: list[dict[str, Any]] = []
    for proposal_id in dict.fromkeys(body.proposal_ids):
        try:
            decision = decisions.decide(proposal_id, user, one)
            items.append({"id": proposal_id, "status": 201, "decision": decision})
        except ApiError as exc:
            items.append({"id": proposal_id, "status": exc.status, "error": exc.body()["error"]})
    return {"items": items}
