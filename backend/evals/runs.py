"""Runs of a suite against an agent: tagging its proposals, scoring them, storing the result.

While a run is open, a proposal whose ``context.run_id`` is ``"<run id>:<case id>"`` (from
the run's own agent) is placed in `observe` mode whatever the agent's dial, so an eval
never reaches the human queue or an executor, and is linked to its case.

Scoring: an expected approval passes when the agent proposed and its payload matches
every field of ``expected.payload``; an expected rejection passes when the agent proposed
nothing for that input. A proposal the policy denies is a proposal (it fails a reject
case and an approve case alike).
"""

from collections import Counter
from typing import Any

from sqlmodel import Session, select

from backend.agents import lookup
from backend.audit import chain as audit
from backend.core.errors import ApiError, not_found
from backend.evals.suites import require as require_suite
from backend.evals.views import run_public
from models.agents import Agent
from models.audit import AuditAction
from models.common import is_ulid, utcnow
from models.evals import EvalRun, EvalRunProposal
from models.proposals import Proposal, Status

EVAL_FLAG = "eval_run"


def start(
    session: Session,
    suite_name: str,
    agent: Agent,
    actor: str,
    model: str | None = None,
    prompt_version: str | None = None,
) -> EvalRun:
    suite = require_suite(session, suite_name)
    run = EvalRun(
        suite=suite.name,
        agent_id=agent.id,
        action_type=suite.action_type,
        model=model,
        prompt_version=prompt_version,
        cases=len(suite.cases),
        created_by=actor,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.EVAL_RUN_STARTED,
        f"eval_run:{run.id}",
        {"suite": suite.name, "agent_id": agent.id},
    )
    return run


def match_run(session: Session, agent_id: str, context: dict[str, Any]) -> tuple[str, str] | None:
    """(run id, case id) if this proposal belongs to an open run of this agent."""
    tag = context.get("run_id")
    if not isinstance(tag, str) or ":" not in tag:
        return None
    run_id, _, case_id = tag.partition(":")
    if not is_ulid(run_id) or not case_id:
        return None
    run = session.get(EvalRun, run_id)
    if run is None or run.status != "running" or run.agent_id != agent_id:
        return None
    return run_id, case_id


def _payload_diff(expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    for key, want in expected.items():
        if key not in got:
            return f"payload has no {key!r} (expected {want!r})"
        if got[key] != want:
            return f"payload {key!r} is {got[key]!r}, expected {want!r}"
    return None


def score_case(case: dict[str, Any], proposal: Proposal | None) -> str | None:
    """None if the case passes, else why it failed."""
    expected = case["expected"]
    if expected["verdict"] == "reject":
        if proposal is None:
            return None
        return (
            f"proposed an action a reviewer rejected ({', '.join(expected.get('reason_codes') or []) or '-'})"
        )
    if proposal is None:
        return "no proposal (an approval was expected)"
    if proposal.status == Status.rejected:
        return "the policy denied the proposal"
    return _payload_diff(expected.get("payload") or {}, proposal.payload)


def finish(session: Session, run_id: str, agent_errors: dict[str, str] | None = None) -> EvalRun:
    """Score every case of the run from the proposals linked to it, and store the result."""
    run = session.get(EvalRun, run_id)
    if run is None:
        raise not_found("eval run", run_id)
    if run.status != "running":
        raise ApiError(409, "run_finished", f"Run {run_id} is already {run.status}.")
    suite = require_suite(session, run.suite)
    latest: dict[str, Proposal] = {}
    rows = session.exec(
        select(EvalRunProposal, Proposal)
        .where(EvalRunProposal.run_id == run_id, EvalRunProposal.proposal_id == Proposal.id)
        .order_by(Proposal.id)  # type: ignore[arg-type]
    ).all()
    for link_row, proposal in rows:
        latest[link_row.case_id] = proposal  # the last proposal for a case is the agent's answer
    passed = 0
    by_reason: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    for case in suite.cases:
        proposal = latest.get(case["id"])
        why = (agent_errors or {}).get(case["id"]) or score_case(case, proposal)
        ok = why is None
        passed += ok
        for code in case["expected"].get("reason_codes") or []:
            tally = by_reason.setdefault(code, {"cases": 0, "passed": 0})
            tally["cases"] += 1
            tally["passed"] += ok
        if not ok:
            failures.append(
                {
                    "case_id": case["id"],
                    "expected_verdict": case["expected"]["verdict"],
                    "reason_codes": case["expected"].get("reason_codes") or [],
                    "why": why,
                    "proposal_id": proposal.id if proposal else None,
                }
            )
    for tally in by_reason.values():
        tally["pass_rate"] = tally["passed"] / tally["cases"]
    versions = Counter(
        (p.context.get("model"), p.context.get("prompt_version")) for p in latest.values()
    ).most_common(1)
    if versions:
        run.model, run.prompt_version = versions[0][0]
    run.cases = len(suite.cases)
    run.passed = passed
    run.pass_rate = passed / len(suite.cases) if suite.cases else None
    run.by_reason = by_reason
    run.failures = failures
    run.status = "completed"
    run.finished_at = utcnow()
    session.add(run)
    session.flush()
    audit.record(
        session,
        run.created_by,
        AuditAction.EVAL_RUN_COMPLETED,
        f"eval_run:{run.id}",
        {
            "suite": run.suite,
            "agent_id": run.agent_id,
            "model": run.model,
            "prompt_version": run.prompt_version,
            "cases": run.cases,
            "passed": run.passed,
            "pass_rate": run.pass_rate,
        },
    )
    return run


def abort(session: Session, run_id: str) -> None:
    run = session.get(EvalRun, run_id)
    if run is not None and run.status == "running":
        run.status = "aborted"
        run.finished_at = utcnow()
        session.add(run)
        audit.record(
            session, run.created_by, AuditAction.EVAL_RUN_ABORTED, f"eval_run:{run.id}", {"suite": run.suite}
        )


def list_runs(
    session: Session, suite: str | None = None, agent: str | None = None, limit: int = 100
) -> dict[str, Any]:
    stmt = select(EvalRun, Agent.name).where(EvalRun.agent_id == Agent.id)
    if suite:
        stmt = stmt.where(EvalRun.suite == suite)
    if agent:
        stmt = stmt.where(Agent.id == lookup.id_of(session, agent))
    rows = session.exec(stmt.order_by(EvalRun.created_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]
    return {"items": [run_public(r, name, with_failures=False) for r, name in rows], "next_cursor": None}


def get(session: Session, run_id: str) -> dict[str, Any]:
    run = session.get(EvalRun, run_id)
    if run is None:
        raise not_found("eval run", run_id)
    agent = session.get(Agent, run.agent_id)
    return run_public(run, agent.name if agent else None)
