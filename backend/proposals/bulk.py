"""Bulk decisions: one request, many proposals, each decided as if alone.

The proposals are decided in groups of up to ``group_commit.MAX_BATCH``, each group in one
transaction with a savepoint per proposal (``backend/proposals/group_commit.py``), so every
rule applies to each (quorum, separation of duties, claims, policy) and one item's refusal
never undoes another's decision; the answer reports each item's HTTP status and decision or
error.
"""

from typing import Any

from backend.auth.oidc import User
from backend.core.errors import ApiError
from backend.proposals import decisions, group_commit
from models.proposals import BulkDecisionCreate, DecisionCreate


def decide_many(user: User, body: BulkDecisionCreate) -> dict[str, Any]:
    one = DecisionCreate(verdict=body.verdict, reason_codes=body.reason_codes, comment=body.comment)
    ids = list(dict.fromkeys(body.proposal_ids))
    items: list[dict[str, Any]] = []
    for start in range(0, len(ids), group_commit.MAX_BATCH):
        chunk = ids[start : start + group_commit.MAX_BATCH]
        jobs = [
            group_commit.Job(lambda session, pid=pid: decisions.decide_in(session, pid, user, one), pid)
            for pid in chunk
        ]
        for proposal_id, outcome in zip(chunk, group_commit.run_batch(jobs), strict=True):
            try:
                decision = group_commit.unwrap(outcome)
                items.append({"id": proposal_id, "status": 201, "decision": decision})
            except ApiError as exc:
                items.append({"id": proposal_id, "status": exc.status, "error": exc.body()["error"]})
    return {"items": items}
