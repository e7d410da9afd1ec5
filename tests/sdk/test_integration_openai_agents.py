"""OpenAI Agents SDK end to end: a scripted model calls a gated tool; a reviewer decides mid-run."""

import asyncio
import json
import os
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, ModelResponse, ModelSettings, RunConfig, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import signoff
from signoff.integrations.openai_agents import SignoffGate
from tests.support.factories import AgentCreds, refund_payload
from tests.support.sdk_helpers import Reviewer, proposals_of, receipt_jti_of, tampered_payload
from tests.support.servers import ApiServer

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")


class ScriptedModel(Model):
    """Turn 1: call `refund` with fixed arguments. Turn 2: echo the tool's output. No network."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.turns = 0

    async def get_response(self, system_instructions: Any, input: Any, *a: Any, **k: Any) -> ModelResponse:
        self.turns += 1
        outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if not outputs:
            call = ResponseFunctionToolCall(
                id="fc_1",
                call_id="call_1",
                name="refund",
                arguments=json.dumps(self.args),
                type="function_call",
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = f"tool said: {outputs[-1]['output']}"
        message = ResponseOutputMessage(
            id="msg_1",
            role="assistant",
            status="completed",
            type="message",
            content=[ResponseOutputText(text=text, type="output_text", annotations=[])],
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError


def _run(server: ApiServer, agent: AgentCreds, args: dict[str, Any]) -> tuple[Any, list[dict[str, Any]], Any]:
    calls: list[dict[str, Any]] = []

    def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> str:
        """Refund a customer's order."""
        calls.append({"order_id": order_id, "amount_usd": amount_usd})
        return f"refunded {amount_usd} {currency}"

    async def main() -> Any:
        async with signoff.AsyncClient(server.url, agent.key) as client:
            gate = SignoffGate(client)
            support = Agent(
                name="support",
                instructions="Refund damaged orders.",
                tools=[gate.tool(refund, action_type="refund")],
                model=ScriptedModel(args),
                model_settings=ModelSettings(),
            )
            result = await gate.run(support, "Refund order", run_config=RunConfig(tracing_disabled=True))
            return result, gate

    result, gate = asyncio.run(main())
    return result, calls, gate


def test_approved_with_an_edit_runs_the_tool_once_with_the_edit(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    args = refund_payload(150)
    reviewer = Reviewer(server.url, lead, agent, edited_payload={**args, "amount_usd": 75.0}, delay=0.3)
    result, calls, gate = _run(server, agent, args)
    reviewer.finish()
    assert calls == [{"order_id": args["order_id"], "amount_usd": 75.0}]
    # The edit is in the transcript: the model reads what ran, not only what it asked for.
    assert result.final_output.endswith("Result: refunded 75.0 USD")
    assert '"amount_usd": 75.0' in result.final_output and "edited" in result.final_output
    (row,) = proposals_of(agent)
    assert row.status == "executed" and row.payload == args
    assert receipt_jti_of(row.id) is not None  # reported with the receipt it checked
    assert gate.decisions[0].edited and gate.interruptions_resolved == 1  # via the interruption flow


def test_rejection_goes_back_to_the_model_and_the_tool_never_runs(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    args = refund_payload(900)
    Reviewer(server.url, lead, agent, verdict="reject", reason_codes=["wrong_amount"], comment="max 100")
    result, calls, _ = _run(server, agent, args)
    assert calls == []
    assert "wrong_amount" in result.final_output and "max 100" in result.final_output
    (row,) = proposals_of(agent)
    assert row.status == "rejected"


def _calls(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_parallel_tool_calls_reach_the_queue_together(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], tmp_path: Any
) -> None:
    """Both calls of one turn are pending at the same time: a reviewer who decides only once
    both are in the queue is answered (were they proposed one after the other, the second
    would wait for the first decision, and this reviewer would never decide)."""
    import threading
    import time

    import httpx

    from tests.support.openai_agents_app import RUN_CONFIG, build

    first, second = refund_payload(20), refund_payload(30)
    seen: list[int] = []

    def reviewer() -> None:
        with httpx.Client(base_url=server.url, headers=lead, timeout=30) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                items = c.get("/v1/queue", params={"agent": agent.name, "status": "pending"}).json()["items"]
                if len(items) == 2:
                    seen.append(2)
                    for item in items:
                        c.post(f"/v1/proposals/{item['id']}/decisions", json={"verdict": "approve"})
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=reviewer, daemon=True)
    thread.start()

    async def main() -> Any:
        async with signoff.AsyncClient(server.url, agent.key) as client:
            gate = SignoffGate(client, timeout=60)
            support = build(gate, tmp_path / "calls.jsonl", [first, second])
            return await gate.run(support, "Refund both", run_config=RUN_CONFIG)

    result = asyncio.run(main())
    thread.join(5)
    assert seen == [2]
    assert sorted(c["order_id"] for c in _calls(tmp_path / "calls.jsonl")) == sorted(
        [first["order_id"], second["order_id"]]
    )
    assert result.final_output.count("refunded") == 2
    assert {r.status for r in proposals_of(agent)} == {"executed"}


def test_a_run_state_resumes_in_another_process(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], tmp_path: Any
) -> None:
    """Process one runs until the interruption, proposes and saves the RunState; a reviewer
    approves with an edit; process two (no task id, no memory) resumes from the saved state:
    one proposal, the tool run once with the edit, the edit in the transcript."""
    import subprocess
    import sys

    import httpx

    from tests.support.openai_agents_app import RUN_CONFIG, build
    from tests.support.servers import ROOT

    args = refund_payload(400)
    state_file, calls_file = tmp_path / "state.json", tmp_path / "calls.jsonl"

    async def first_process() -> str:
        async with signoff.AsyncClient(server.url, agent.key) as client:
            gate = SignoffGate(client)
            support = build(gate, calls_file, [args])
            from agents import Runner

            result = await Runner.run(support, "Refund", context={}, run_config=RUN_CONFIG)
            state = result.to_state()
            (pid,) = await gate.propose_all(state, list(result.interruptions))
            state_file.write_text(state.to_string())
            return pid

    pid = asyncio.run(first_process())
    edited = {**args, "amount_usd": 250.0}
    r = httpx.post(
        f"{server.url}/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "edited_payload": edited, "comment": "corrected by the reviewer"},
        headers=lead,
    )
    assert r.status_code == 201, r.text

    second = subprocess.run(
        [sys.executable, "-m", "tests.support.openai_agents_app", server.url, agent.key]
        + [str(state_file), str(calls_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert second.returncode == 0, second.stderr
    assert _calls(calls_file) == [{"order_id": args["order_id"], "amount_usd": 250.0}]
    assert "edited" in second.stdout and '"amount_usd": 250.0' in second.stdout
    (row,) = proposals_of(agent)
    assert row.id == pid and row.status == "executed"


def test_a_payload_changed_after_approval_is_refused_and_never_run(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], tmp_path: Any
) -> None:
    import httpx
    from agents import Runner

    from tests.support.openai_agents_app import RUN_CONFIG, build

    calls_file = tmp_path / "calls.jsonl"

    async def main() -> Any:
        async with signoff.AsyncClient(server.url, agent.key) as client:
            gate = SignoffGate(client)
            support = build(gate, calls_file, [refund_payload(45)])
            result = await Runner.run(support, "Refund", context={}, run_config=RUN_CONFIG)
            state = result.to_state()
            (pid,) = await gate.propose_all(state, list(result.interruptions))
            async with httpx.AsyncClient(base_url=server.url, headers=lead) as reviewer:
                r = await reviewer.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"})
            assert r.status_code == 201, r.text
            with tampered_payload(pid, {"amount_usd": 9000.0}):
                return pid, await gate.resume(support, state, run_config=RUN_CONFIG)

    pid, result = asyncio.run(main())
    assert _calls(calls_file) == []
    assert "Not run: Receipt refused" in result.final_output
    (row,) = proposals_of(agent)
    assert row.status == "approved" and receipt_jti_of(pid) is None  # nothing reported
