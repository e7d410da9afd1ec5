"""`signoff eval run`: feed each case of a suite to an agent, then score what it proposed.

The agent is either a command (it reads one case as JSON on stdin and posts its proposal
through the HTTP API with the key in ``SIGNOFF_API_KEY``) or a Python callable given as
``module:function`` (it gets the case and returns a proposal body, or None to propose
nothing; the runner posts it). Either way the proposal must carry the case's ``run_id``
in ``context.run_id``: that is how the backend places it in `observe` mode and links it
to the case. The run is opened before the first case and scored after the last.
"""

import importlib
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from backend.agents import keys
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.evals import runs as eval_runs
from backend.evals import suites
from backend.evals.views import run_public
from models.evals import SuiteUpsert

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
AgentFn = Callable[[dict[str, Any]], dict[str, Any] | None]


def load_suite_file(path: Path, name: str, actor: str, description: str = "") -> str:
    """Parse a suite file (refusing it whole, naming the line, if one is broken) and store it."""
    with path.open("rb") as fh:
        cases = suites.parse_lines(fh)
    action_type = next((c.action_type for c in cases if c.action_type), None)
    if action_type is None:
        raise suites.SuiteFileError(1, "no case names its action_type")
    with transaction() as session:
        suites.upsert(
            session, name, SuiteUpsert(action_type=action_type, description=description, cases=cases), actor
        )
    return name


def _agent_callable(spec: str) -> AgentFn | None:
    if not _CALLABLE.match(spec):
        return None
    module, _, func = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ApiError(422, "invalid_agent", f"Cannot load the agent {spec!r}: {exc}", param="agent") from exc


def _post(client: httpx.Client, body: dict[str, Any], run_tag: str) -> str | None:
    body = dict(body)
    body["context"] = {**(body.get("context") or {}), "run_id": run_tag}
    r = client.post("/v1/proposals", json=body)
    if r.status_code >= 400:
        return f"proposal refused: HTTP {r.status_code} {r.text[:300]}"
    return None


def _run_command(cmd: list[str], message: dict[str, Any], env: dict[str, str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            cmd, input=orjson.dumps(message), env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"agent command timed out after {timeout:g} s"
    except OSError as exc:
        return f"agent command could not start: {exc}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-300:]
        return f"agent command exited with {done.returncode}: {tail}"
    return None


def run(
    suite: str,
    agent: str,
    api_url: str,
    api_key: str,
    actor: str = "system:cli",
    model: str | None = None,
    prompt_version: str | None = None,
    timeout: float = 60.0,
    on_case: Callable[[str, str | None], None] | None = None,
) -> dict[str, Any]:
    """Run `suite` against `agent` (a command line or ``module:function``); return the scored run."""
    with read_session() as session:
        principal, _key = keys.authenticate(session, api_key)
        suite_row = suites.require(session, suite)
        cases = list(suite_row.cases)
        action_type = suite_row.action_type
    fn = _agent_callable(agent)
    cmd = None if fn else shlex.split(agent)
    if cmd is not None and not cmd:
        raise ApiError(422, "invalid_agent", "--agent is empty.")
    with transaction() as session:  # only now, with the suite and the agent known good
        run_row = eval_runs.start(session, suite, principal, actor, model, prompt_version)
        run_id = run_row.id
    errors: dict[str, str] = {}
    env = {**os.environ, "SIGNOFF_API_URL": api_url, "SIGNOFF_API_KEY": api_key, "SIGNOFF_RUN_ID": run_id}
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=api_url, headers=headers, timeout=timeout) as client:
            for case in cases:
                tag = f"{run_id}:{case['id']}"
                message = {
                    "run_id": tag,
                    "case_id": case["id"],
                    "action_type": case.get("action_type") or action_type,
                    "input": case.get("input", {}),
                }
                if fn is not None:
                    try:
                        body = fn(message)
                        error = _post(client, body, tag) if body else None
                    except Exception as exc:  # an agent's bug is a failed case, not a failed run
                        error = f"agent raised {exc.__class__.__name__}: {exc}"
                else:
                    assert cmd is not None
                    error = _run_command(cmd, message, env, timeout)
                if error:
                    errors[case["id"]] = error
                if on_case:
                    on_case(case["id"], error)
    except BaseException:
        # An interrupted run is not scored: the cases it never asked would count as
        # "proposed nothing", which passes every expected rejection.
        with transaction() as session:
            eval_runs.abort(session, run_id)
        raise
    with transaction() as session:
        done = eval_runs.finish(session, run_id, errors)
        return run_public(done, principal.name)
