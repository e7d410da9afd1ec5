"""The eval gate: before an agent may act without a human, it must pass a suite.

An action type can require a minimum pass rate on a named suite, within the last N days,
for the agent's *current* model and prompt_version (read from its latest production
proposal of that type; eval runs' own proposals do not count, or an agent could be
evaluated as one version and deployed as another). Only the latest matching run counts:
a retry that happens to pass once does not erase a later failure.
"""

from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.core.errors import ApiError, not_found
from models.agents import Agent
from models.audit import AuditAction
from models.common import utcnow
from models.evals import EvalGate, EvalGatePublic, EvalGateUpdate, EvalRun, EvalRunProposal, EvalSuite
from models.proposals import Proposal


def public(row: EvalGate) -> dict[str, Any]:
    return EvalGatePublic.model_validate(row, from_attributes=True).model_dump(mode="json")


def get(session: Session, action_type: str) -> dict[str, Any]:
    action_types.require(session, action_type)
    row = session.get(EvalGate, action_type)
    if row is None:
        raise not_found("eval gate for action type", action_type)
    return public(row)


def put(session: Session, action_type: str, body: EvalGateUpdate, actor: str) -> dict[str, Any]:
    action_types.require(session, action_type)
    suite = session.get(EvalSuite, body.suite)
    if suite is None:
        raise ApiError(422, "unknown_suite", f"No suite named {body.suite!r}.", param="suite")
    if suite.action_type != action_type:
        raise ApiError(
            422, "suite_action_type", f"Suite {body.suite!r} is for {suite.action_type!r}.", param="suite"
        )
    row = session.get(EvalGate, action_type) or EvalGate(
        action_type=action_type, suite=body.suite, min_pass_rate=body.min_pass_rate
    )
    row.suite, row.min_pass_rate, row.window_days = body.suite, body.min_pass_rate, body.window_days
    row.updated_by, row.updated_at = actor, utcnow()
    session.add(row)
    session.flush()
    audit.record(session, actor, AuditAction.EVAL_GATE_SET, f"action_type:{action_type}", body.model_dump())
    return public(row)


def delete(session: Session, action_type: str, actor: str) -> None:
    row = session.get(EvalGate, action_type)
    if row is None:
        raise not_found("eval gate for action type", action_type)
    session.delete(row)
    audit.record(
        session, actor, AuditAction.EVAL_GATE_REMOVED, f"action_type:{action_type}", {"suite": row.suite}
    )


def current_versions(
    session: Session, agent_id: str, action_type: str
) -> tuple[str | None, str | None] | None:
    """The agent's model and prompt_version per its latest production proposal of this type."""
    latest = session.exec(
        select(Proposal)
        .where(
            Proposal.agent_id == agent_id,
            Proposal.action_type == action_type,
            Proposal.id.not_in(select(EvalRunProposal.proposal_id)),  # type: ignore[union-attr]
        )
        .order_by(Proposal.created_at.desc(), Proposal.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(1)
    ).first()
    if latest is None:
        return None
    return latest.context.get("model"), latest.context.get("prompt_version")


def _refuse(gate: EvalGate, message: str, **extra: Any) -> ApiError:
    return ApiError(
        409,
        "eval_gate_failed",
        message,
        param="mode",
        extra={"suite": gate.suite, "min_pass_rate": gate.min_pass_rate, **extra},
    )


def check(session: Session, agent: Agent, action_type: str) -> None:
    """Raise 409 ``eval_gate_failed`` unless the agent may be raised to `execute`."""
    gate = session.get(EvalGate, action_type)
    if gate is None:
        return
    need = f"{gate.min_pass_rate:.0%}"
    versions = current_versions(session, agent.id, action_type)
    if versions is None:
        raise _refuse(
            gate,
            f"Eval gate: suite {gate.suite!r} must score at least {need} for this agent's model and "
            f"prompt_version, but the agent has made no {action_type!r} proposal to tell them.",
            pass_rate=None,
        )
    model, prompt = versions
    since = utcnow() - timedelta(days=gate.window_days)
    run = session.exec(
        select(EvalRun)
        .where(
            EvalRun.agent_id == agent.id,
            EvalRun.suite == gate.suite,
            EvalRun.status == "completed",
            EvalRun.model == model,
            EvalRun.prompt_version == prompt,
            EvalRun.created_at >= since,  # type: ignore[operator]
        )
        .order_by(EvalRun.created_at.desc(), EvalRun.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(1)
    ).first()
    who = f"model {model!r}, prompt_version {prompt!r}"
    if run is None or run.pass_rate is None:
        raise _refuse(
            gate,
            f"Eval gate: suite {gate.suite!r} must score at least {need} for {who} within the last "
            f"{gate.window_days} days; there is no such run.",
            pass_rate=None,
            model=model,
            prompt_version=prompt,
        )
    if run.pass_rate < gate.min_pass_rate:
        raise _refuse(
            gate,
            f"Eval gate: suite {gate.suite!r} scored {run.pass_rate:.0%} for {who} "
            f"(run {run.id}); at least {need} is required.",
            pass_rate=run.pass_rate,
            run_id=run.id,
            model=model,
            prompt_version=prompt,
        )
