"""Helpers for the eval-data tests: place and decide proposals through the services."""

from typing import Any

import orjson

from backend.auth.oidc import User
from backend.core.db import transaction
from backend.evals import annotations
from backend.proposals import decisions, idempotency
from backend.proposals import placing as proposals
from models.evals import AnnotationCreate
from models.proposals import DecisionCreate, ProposalCreate
from tests.support.factories import refund_proposal

LEAD = User("lead", "lead@example.com", "Lee Lead", ("reviewer", "support_refunds"))
REASONS = [
    ["wrong_amount"],
    ["not_eligible"],
    ["insufficient_evidence", "duplicate"],
    ["suspected_prompt_injection"],
    ["other"],
]


def place(agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    status, view, _ = proposals.create(
        agent_id, ProposalCreate.model_validate(body), idempotency.body_hash(orjson.dumps(body)), None
    )
    assert status == 201
    return view


def decide(
    proposal_id: str,
    verdict: str,
    reason_codes: list[str] | None = None,
    comment: str = "",
    edited: dict[str, Any] | None = None,
    user: User = LEAD,
) -> dict[str, Any]:
    body = DecisionCreate.model_validate(
        {"verdict": verdict, "reason_codes": reason_codes or [], "comment": comment, "edited_payload": edited}
    )
    return decisions.decide(proposal_id, user, body)


def annotate(proposal_id: str, labels: list[str], severity: str | None, note: str) -> dict[str, Any]:
    with transaction() as session:
        return annotations.create(
            session,
            proposal_id,
            LEAD,
            AnnotationCreate.model_validate({"labels": labels, "severity": severity, "note": note}),
        )


def decided_mix(
    agent_id: str, n: int, model: str = "gpt-test", prompt: str = "refunds-v3"
) -> dict[str, dict]:
    """`n` decided proposals: a quarter each approved, edited-and-approved, and rejected (two ways).

    Returns what each exported case must say, by proposal id.
    """
    expected: dict[str, dict[str, Any]] = {}
    for i in range(n):
        body = refund_proposal(10.0 + i)
        body["context"] = {**body["context"], "model": model, "prompt_version": prompt}
        view = place(agent_id, body)
        pid = view["id"]
        kind = i % 4
        edited = None
        codes: list[str] = []
        comment = f"case {i}"
        if kind == 0:
            decide(pid, "approve", comment=comment)
        elif kind == 1:
            edited = {**body["payload"], "amount_usd": round(body["payload"]["amount_usd"] / 2, 2)}
            decide(pid, "approve", comment=comment, edited=edited)
        else:
            codes = REASONS[i % len(REASONS)]
            decide(pid, "reject", codes, comment=comment)
        notes = []
        if i % 10 == 0:
            notes.append(annotate(pid, ["tone", f"batch-{i // 10}"], "high" if kind >= 2 else "low", f"n{i}"))
        expected[pid] = {
            "body": body,
            "verdict": "approve" if kind < 2 else "reject",
            "edited": edited,
            "codes": codes,
            "comment": comment,
            "annotations": notes,
        }
    return expected
