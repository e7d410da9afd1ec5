"""Scenario suites: named sets of cases, each an input and the expected verdict.

A suite file is JSONL. A line is either a suite case (``{"id", "action_type", "input",
"expected": {"verdict", "reason_codes", "payload", "rejected_payload"}}``) or a case as
``signoff export`` writes it (converted on the way in), so a suite can be built straight
from exported decisions. One broken line refuses the whole file, naming the line.
"""

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import ValidationError
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.core.errors import ApiError, not_found
from backend.evals.views import run_public
from models.audit import AuditAction
from models.common import utcnow
from models.evals import EvalRun, EvalSuite, SuiteCase, SuitePublic, SuiteUpsert


class SuiteFileError(ValueError):
    """A suite file that cannot be used; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def case_from_export(case: dict[str, Any]) -> dict[str, Any]:
    """An exported decision as a suite case: a rejection means the agent should not propose it."""
    rejected = case.get("verdict") == "reject"
    expected: dict[str, Any] = {
        "verdict": case["verdict"],
        "reason_codes": list(case.get("reason_codes") or []),
    }
    if rejected:
        expected["rejected_payload"] = case.get("payload")
    else:
        expected["payload"] = case.get("final_payload") or case.get("edited_payload") or case.get("payload")
    return {
        "id": str(case["id"]),
        "action_type": case.get("action_type"),
        "input": {"evidence": case.get("evidence") or []},
        "expected": expected,
        "source": {
            "proposal_id": case.get("id"),
            "agent_name": case.get("agent_name"),
            "model": case.get("model"),
            "prompt_version": case.get("prompt_version"),
        },
    }


def _error_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def parse_lines(lines: Iterable[str | bytes]) -> list[SuiteCase]:
    """Every case of a suite file, or SuiteFileError naming the first broken line."""
    cases: list[SuiteCase] = []
    seen: set[str] = set()
    action_type: str | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.decode() if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SuiteFileError(number, f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise SuiteFileError(number, "a case is a JSON object")
        if "expected" not in data and "verdict" in data and "id" in data:
            data = case_from_export(data)
        if "id" not in data:
            data["id"] = f"line-{number}"
        try:
            case = SuiteCase.model_validate(data)
        except ValidationError as exc:
            raise SuiteFileError(number, _error_text(exc)) from exc
        if case.id in seen:
            raise SuiteFileError(number, f"duplicate case id {case.id!r}")
        if case.expected.verdict == "approve" and case.expected.payload is None:
            raise SuiteFileError(number, "an expected approval needs expected.payload")
        action_type = action_type or case.action_type
        if case.action_type and case.action_type != action_type:
            raise SuiteFileError(number, f"action type {case.action_type!r}; this suite is {action_type!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise SuiteFileError(1, "the suite has no cases")
    return cases


def upsert(session: Session, name: str, spec: SuiteUpsert, actor: str) -> EvalSuite:
    at = action_types.get(session, spec.action_type)
    if at is None:
        raise ApiError(422, "unknown_action_type", f"No action type named {spec.action_type!r}.")
    cases = []
    for i, case in enumerate(spec.cases):
        if case.action_type not in (None, spec.action_type):
            raise ApiError(
                422,
                "mixed_action_types",
                f"Case {case.id!r} is for {case.action_type!r}.",
                param=f"cases.{i}",
            )
        cases.append(case.model_dump(mode="json", exclude_none=True) | {"action_type": spec.action_type})
    if len({c["id"] for c in cases}) != len(cases):
        raise ApiError(422, "duplicate_case_id", "Case ids must be unique within a suite.", param="cases")
    valid = action_types.reason_code_set(at, include_retired=True)
    for i, case in enumerate(cases):
        unknown = [c for c in case["expected"].get("reason_codes", []) if valid and c not in valid]
        if unknown:
            raise ApiError(
                422,
                "unknown_reason_code",
                f"Case {case['id']!r}: unknown reason code(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(valid))}.",
                param=f"cases.{i}.expected.reason_codes",
                extra={"valid": sorted(valid)},
            )
    row = session.get(EvalSuite, name)
    now = utcnow()
    if row is None:
        row = EvalSuite(name=name, action_type=spec.action_type, created_by=actor, created_at=now)
    row.action_type = spec.action_type
    row.description = spec.description
    row.cases = cases
    row.updated_at = now
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.EVAL_SUITE_SAVED,
        f"eval_suite:{name}",
        {"action_type": spec.action_type, "cases": len(cases), "description": spec.description},
    )
    return row


def require(session: Session, name: str) -> EvalSuite:
    row = session.get(EvalSuite, name)
    if row is None:
        raise not_found("suite", name)
    return row


def public(row: EvalSuite, last_run: EvalRun | None = None) -> dict[str, Any]:
    return SuitePublic(
        suite=row.name,
        action_type=row.action_type,
        description=row.description,
        cases=len(row.cases),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_run=run_public(last_run, with_failures=False) if last_run else None,
    ).model_dump(mode="json")


def list_suites(session: Session) -> dict[str, Any]:
    rows = session.exec(select(EvalSuite).order_by(EvalSuite.name)).all()
    items = []
    for row in rows:
        last = session.exec(
            select(EvalRun)
            .where(EvalRun.suite == row.name, EvalRun.status == "completed")
            .order_by(EvalRun.created_at.desc())  # type: ignore[attr-defined]
            .limit(1)
        ).first()
        items.append(public(row, last))
    return {"items": items, "next_cursor": None}
