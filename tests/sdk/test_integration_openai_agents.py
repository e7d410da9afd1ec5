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
from tests.support.sdk_helpers import Reviewer, proposals_of
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
    assert result.final_output == "tool said: refunded 75.0 USD"
    (row,) = proposals_of(agent)
    assert row.status == "executed" and row.payload == args
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
