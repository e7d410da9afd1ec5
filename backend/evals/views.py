"""How eval runs look on the wire: shared by the suites (their last run) and the runs."""

from typing import Any

from models.evals import EvalRun, RunPublic


def run_public(run: EvalRun, agent_name: str | None = None, with_failures: bool = True) -> dict[str, Any]:
    return RunPublic(
        suite=run.suite,
        run_id=run.id,
        agent_id=run.agent_id,
        agent_name=agent_name,
        action_type=run.action_type,
        status=run.status,
        created_at=run.created_at,
        finished_at=run.finished_at,
        model=run.model,
        prompt_version=run.prompt_version,
        cases=run.cases,
        passed=run.passed,
        pass_rate=run.pass_rate,
        by_reason=run.by_reason,
        failures=run.failures if with_failures else [],
    ).model_dump(mode="json")
