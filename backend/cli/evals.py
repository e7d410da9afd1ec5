"""`signoff export` and `signoff eval ...`: eval data from the command line.

Like the rest of the CLI these work on the database directly (an operator's tool), except
`eval run`, whose agent talks to a running API with its own key.
"""

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from backend.agents import lookup
from backend.cli.common import OPERATOR, JsonFlag, fail, guard, out
from backend.controls import eval_gate
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.evals import export, suites
from backend.evals import runner as eval_runner
from backend.evals import runs as eval_runs
from models.evals import EvalGateUpdate, SuiteUpsert
from models.proposals import Verdict

eval_app = typer.Typer(help="Scenario suites, eval runs and eval gates.", no_args_is_help=True)
suite_app = typer.Typer(help="Scenario suites.", no_args_is_help=True)
gate_app = typer.Typer(help="Eval gates on raising a dial to execute.", no_args_is_help=True)
eval_app.add_typer(suite_app, name="suite")
eval_app.add_typer(gate_app, name="gate")


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"{name} takes an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z; got {value!r}."
        )


def _verdict(value: str | None) -> Verdict | None:
    if value is None:
        return None
    if value not in Verdict.__members__:
        fail(f"--verdict is approve or reject; got {value!r}.")
    return Verdict(value)


def export_command(
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Decided at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Decided before (ISO 8601).")] = None,
    action_type: Annotated[str | None, typer.Option("--action-type")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name or id.")] = None,
    verdict: Annotated[str | None, typer.Option(help="approve or reject.")] = None,
    reason_code: Annotated[str | None, typer.Option("--reason-code")] = None,
    mask_pii: Annotated[bool, typer.Option("--mask-pii/--no-mask-pii", help="Mask x-pii fields.")] = True,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Stream decided proposals as eval cases (JSONL, one case a line; or CSV)."""
    guard()
    if format not in ("jsonl", "csv"):
        fail(f"--format is jsonl or csv; got {format!r}.")
    if agent:
        with read_session() as session:
            if lookup.find_or_none(session, agent) is None:
                fail(f"No agent {agent!r} (by name or id).", 2)
    filters = export.ExportFilter(
        _when(since, "--since"),
        _when(until, "--until"),
        action_type,
        agent,
        _verdict(verdict),
        reason_code,
        mask_pii,
    )
    try:
        sink = output.open("wb") if output else sys.stdout.buffer
    except OSError as exc:
        fail(f"Cannot write {output}: {exc.strerror or exc}")
    try:
        for chunk in export.stream(filters, format):
            sink.write(chunk)
    finally:
        if output:
            sink.close()
        else:
            sink.flush()


@suite_app.command("import")
def suite_import(
    file: Path,
    name: Annotated[str | None, typer.Option(help="Suite name (default: the file's stem).")] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Store a suite from a JSONL file (hand-written cases or `signoff export` lines)."""
    guard()
    _import(file, name or file.stem, description)
    out.print(f"Suite {name or file.stem} saved.")


def _import(file: Path, name: str, description: str = "") -> None:
    if not file.is_file():
        fail(f"No such file: {file}")
    try:
        eval_runner.load_suite_file(file, name, OPERATOR, description)
    except suites.SuiteFileError as exc:
        fail(f"{file}: {exc}; nothing was stored or run.", 2)
    except ApiError as exc:
        fail(exc.message, 2)


@suite_app.command("from-decisions")
def suite_from_decisions(
    name: str,
    action_type: Annotated[str, typer.Option("--action-type")],
    agent: Annotated[str | None, typer.Option()] = None,
    since: Annotated[str | None, typer.Option()] = None,
    reason_code: Annotated[str | None, typer.Option("--reason-code")] = None,
    include_edits: Annotated[
        bool, typer.Option("--include-edits", help="Add edited approvals (the corrected action is expected).")
    ] = False,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Build a suite from rejections (and optionally edited approvals) of past decisions."""
    guard()
    if agent:
        with read_session() as session:
            if lookup.find_or_none(session, agent) is None:
                fail(f"No agent {agent!r} (by name or id).", 2)
    filters = export.ExportFilter(
        since=_when(since, "--since"),
        action_type=action_type,
        agent=agent,
        reason_code=reason_code,
        mask_pii=False,
    )
    cases: list[dict[str, Any]] = []
    with read_session() as session:
        for batch in export.iter_cases(session, filters):
            for case in batch:
                if case["verdict"] == "reject" or (include_edits and case["edited_payload"] is not None):
                    cases.append(suites.case_from_export(case))
    if not cases:
        fail("No decisions match; the suite was not saved.")
    try:
        with transaction() as session:
            suites.upsert(
                session,
                name,
                SuiteUpsert.model_validate(
                    {"action_type": action_type, "description": description, "cases": cases}
                ),
                OPERATOR,
            )
    except ApiError as exc:
        fail(exc.message, 2)
    out.print(f"Suite {name} saved with {len(cases)} cases.")


@eval_app.command("run")
def eval_run(
    suite: Annotated[str, typer.Argument(help="A stored suite's name, or a JSONL suite file.")],
    agent: Annotated[
        str, typer.Option("--agent", help="A command line, or a Python callable module:function.")
    ],
    api_url: Annotated[str, typer.Option("--api-url", envvar="SIGNOFF_API_URL")] = "http://127.0.0.1:8000",
    model: Annotated[
        str | None, typer.Option(help="Record this model if the agent proposes nothing.")
    ] = None,
    prompt_version: Annotated[str | None, typer.Option("--prompt-version")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per case.")] = 60.0,
    min_pass_rate: Annotated[
        float | None, typer.Option("--min-pass-rate", help="Exit 1 below this rate (0-1), for CI.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Feed every case to the agent (key from SIGNOFF_API_KEY), score its proposals, store the run."""
    guard()
    api_key = os.environ.get("SIGNOFF_API_KEY", "")
    if not api_key:
        fail("Set SIGNOFF_API_KEY to the agent's API key (so_...).")
    path = Path(suite)
    if path.suffix in (".jsonl", ".json", ".ndjson") or path.is_file():
        _import(path, path.stem)
        suite = path.stem
    try:
        view = eval_runner.run(suite, agent, api_url, api_key, OPERATOR, model, prompt_version, timeout)
    except ApiError as exc:
        fail(exc.message, 2)
    except SQLAlchemyError as exc:
        fail(f"Database error: {exc.__class__.__name__}")
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
    else:
        rate = "-" if view["pass_rate"] is None else f"{view['pass_rate']:.0%}"
        out.print(
            f"Run {view['run_id']} of {view['suite']}: {view['passed']}/{view['cases']} passed ({rate})",
            highlight=False,
        )
        for code, tally in sorted(view["by_reason"].items()):
            out.print(
                f"  {code}: {tally['passed']}/{tally['cases']} ({tally['pass_rate']:.0%})", highlight=False
            )
        for failure in view["failures"]:
            out.print(f"  FAIL {failure['case_id']}: {failure['why']}", highlight=False)
    if min_pass_rate is not None and (view["pass_rate"] or 0) < min_pass_rate:
        raise typer.Exit(1)


@eval_app.command("runs")
def eval_runs_list(suite: Annotated[str | None, typer.Option()] = None, as_json: JsonFlag = False) -> None:
    """Runs, newest first."""
    guard()
    with read_session() as session:
        page = eval_runs.list_runs(session, suite)
    if as_json:
        sys.stdout.write(json.dumps(page["items"], indent=2) + "\n")
        return
    for r in page["items"]:
        rate = "-" if r["pass_rate"] is None else f"{r['pass_rate']:.0%}"
        out.print(
            f"{r['created_at']}  {r['suite']}  {r['agent_name']}  {r['model']}/{r['prompt_version']}  {rate}"
        )


@gate_app.command("set")
def gate_set(
    action_type: str,
    suite: Annotated[str, typer.Option()],
    min_pass_rate: Annotated[float, typer.Option("--min-pass-rate")],
    window_days: Annotated[int, typer.Option("--window-days")] = 30,
) -> None:
    """Require a pass rate on a suite before an agent's dial for ACTION_TYPE goes to execute."""
    guard()
    try:
        spec = EvalGateUpdate(suite=suite, min_pass_rate=min_pass_rate, window_days=window_days)
    except ValueError as exc:
        fail(f"Invalid gate: {exc}")
    try:
        with transaction() as session:
            eval_gate.put(session, action_type, spec, OPERATOR)
    except ApiError as exc:
        fail(exc.message, 2)
    out.print(f"{action_type}: execute now needs {min_pass_rate:.0%} on {suite} within {window_days} days.")
