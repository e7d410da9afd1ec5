"""Policy versions: read, replace (a new version, validated first), and dry-run."""

import hashlib
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.agents import lookup
from backend.audit import chain as audit
from backend.catalog import action_types
from backend.controls.policy import gate
from backend.controls.policy.text import PolicyError, lint
from backend.core.errors import ApiError, not_found
from models.audit import AuditAction
from models.policies import PolicyTest, PolicyVersion

MAX_LIMIT = 100


def public(row: PolicyVersion) -> dict[str, Any]:
    return {
        "version": row.version,
        "text": row.text,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "comment": row.comment,
        "policy_ids": row.policy_ids,
    }


def current(session: Session) -> dict[str, Any]:
    version = gate.current_version(session)
    if version is None:
        raise ApiError(404, "resource_missing", "No policy has been set.")
    return get_version(session, version)


def get_version(session: Session, version: int) -> dict[str, Any]:
    row = session.get(PolicyVersion, version)
    if row is None:
        raise not_found("policy version", str(version))
    return public(row)


def list_versions(session: Session, limit: int = 50, cursor: int | None = None) -> dict[str, Any]:
    """Newest first; the cursor is the last version seen."""
    stmt = select(PolicyVersion).order_by(PolicyVersion.version.desc())  # type: ignore[attr-defined]
    if cursor is not None:
        stmt = stmt.where(PolicyVersion.version < cursor)
    rows = list(session.exec(stmt.limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "version": r.version,
                "created_at": r.created_at,
                "created_by": r.created_by,
                "comment": r.comment,
            }
            for r in rows
        ],
        "next_cursor": str(rows[-1].version) if more and rows else None,
    }


def invalid(exc: PolicyError) -> ApiError:
    return ApiError(
        422, "invalid_policy", exc.message, param="text", extra={"line": exc.line, "column": exc.column}
    )


def compile_or_422(session: Session, text: str) -> gate.Compiled:
    """Cedar's parse, then the schema check against Signoff's entities and action types."""
    try:
        compiled = gate.compile_draft(text)
        lint(text, {a.name for a in action_types.list_all(session)})
    except PolicyError as exc:
        raise invalid(exc) from exc
    return compiled


def replace(session: Session, text: str, comment: str, actor: str) -> dict[str, Any]:
    """Store ``text`` as the next version, after Cedar has parsed it; the old one stays if not."""
    compiled = compile_or_422(session, text)
    version = (gate.current_version(session) or 0) + 1
    row = PolicyVersion(
        version=version, text=text, comment=comment, policy_ids=list(compiled.ids), created_by=actor
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "policy_conflict", "Another policy change landed first; retry.") from exc
    audit.record(
        session,
        actor,
        AuditAction.POLICY_UPDATED,
        "policy",
        {
            "version": version,
            "comment": comment,
            "policy_ids": row.policy_ids,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": text,
        },
    )
    return public(row)


def _answer(answer: gate.Answer) -> dict[str, Any]:
    return {
        "decision": "allow" if answer.allowed else "deny",
        "policy_ids": answer.policy_ids,
        "errors": answer.errors,
    }


def dry_run(session: Session, body: PolicyTest) -> dict[str, Any]:
    """Judge a sample proposal (and reviewer) under draft or current policies; stores nothing."""
    if body.text is None:
        policies = gate.compiled(session)
        if policies is None:
            raise ApiError(404, "resource_missing", "No policy has been set.")
    else:
        policies = compile_or_422(session, body.text)
    agent = lookup.find(session, body.proposal.agent)
    action_type = action_types.get(session, body.proposal.action_type)
    if action_type is None:
        raise ApiError(
            422,
            "unknown_action_type",
            f"No action type named {body.proposal.action_type!r}.",
            param="proposal.action_type",
        )
    outcome, propose, execute = gate.evaluate_proposal(
        policies,
        agent,
        gate.granted_types(session, agent.id),
        action_type,
        body.proposal.payload,
        body.proposal.context,
    )
    approve = None
    if body.reviewer is not None:
        verdict = gate.evaluate_approval(
            policies,
            "dry-run-reviewer",
            body.reviewer.groups,
            action_type,
            body.proposal.payload,
            body.proposal.context,
        )
        approve = {
            "decision": "allow" if verdict.allowed else "deny",
            "policy_ids": verdict.policy_ids,
            "errors": verdict.errors,
        }
    return {
        "outcome": outcome.outcome,
        "propose": _answer(propose),
        "execute": _answer(execute),
        "approve": approve,
        "version": policies.version,
        "policy_ids": outcome.policy_ids,
    }
