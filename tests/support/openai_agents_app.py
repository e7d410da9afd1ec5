"""An OpenAI Agents SDK app for tests: a scripted model that calls `refund` once per given
argument set in one turn (parallel tool calls), then echoes the tools' outputs.

``python -m tests.support.openai_agents_app URL KEY STATE_FILE CALLS_FILE`` resumes a run
from its serialized `RunState` in a process of its own, and prints the final output.
"""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, ModelSettings, RunConfig, Usage
from agents.models.interface import Model
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

import signoff
from signoff.integrations.openai_agents import SignoffGate

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
RUN_CONFIG = RunConfig(tracing_disabled=True)


class ParallelCallsModel(Model):
    def __init__(self, args_list: list[dict[str, Any]]) -> None:
        self.args_list = args_list

    async def get_response(self, system_instructions: Any, input: Any, *a: Any, **k: Any) -> ModelResponse:
        outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if not outputs:
            calls = [
                ResponseFunctionToolCall(
                    id=f"fc_{n}",
                    call_id=f"call_{n}",
                    name="refund",
                    arguments=json.dumps(args),
                    type="function_call",
                )
                for n, args in enumerate(self.args_list)
            ]
            return ModelResponse(output=calls, usage=Usage(), response_id=None)
        text = " | ".join(str(o["output"]) for o in outputs)
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


def build(gate: SignoffGate, calls_file: Path, args_list: list[dict[str, Any]]) -> Agent[Any]:
    def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> str:
        """Refund a customer's order."""
        with calls_file.open("a") as f:
            f.write(json.dumps({"order_id": order_id, "amount_usd": amount_usd}) + "\n")
        return f"refunded {amount_usd} on {order_id}"

    return Agent(
        name="support",
        instructions="Refund damaged orders.",
        tools=[gate.tool(refund, action_type="refund")],
        model=ParallelCallsModel(args_list),
        model_settings=ModelSettings(),
    )


async def _resume(url: str, key: str, state: str, calls_file: Path) -> str:
    async with signoff.AsyncClient(url, key) as client:
        gate = SignoffGate(client, timeout=30)  # a new gate: no memory of the first process
        agent = build(gate, calls_file, [])
        result = await gate.resume(agent, state, run_config=RUN_CONFIG)
        return str(result.final_output)


if __name__ == "__main__":
    url, key, state, calls = sys.argv[1:5]
    print(asyncio.run(_resume(url, key, Path(state).read_text(), Path(calls))))
