"""OpenAI Agents SDK: tools whose `needs_approval` interruptions are resolved by Signoff.

    gate = SignoffGate(signoff.AsyncClient())
    refund_tool = gate.tool(refund, action_type="refund")
    agent = Agent(name="support", tools=[refund_tool])
    result = await gate.run(agent, "Refund order 42")

`gate.run` drives `Runner.run`: every interruption becomes a Signoff proposal, the reviewer's
decision approves or rejects it in the run state (a rejection's reasons and comment go back
to the model), and the run resumes. The tool runs with the approved arguments (the
reviewer's edit, if any), once, and its outcome is reported to Signoff.
"""

import asyncio
import contextvars
import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from agents import Agent, FunctionTool, Runner, RunResult, ToolApprovalItem, function_tool
from agents.tool_context import ToolContext

from signoff.client import AsyncClient, AsyncProposalHandle
from signoff.errors import NotApproved
from signoff.types import DecisionState

_handle: contextvars.ContextVar[AsyncProposalHandle | None] = contextvars.ContextVar(
    "signoff_openai_agents_handle", default=None
)


def rejection_message(state: DecisionState) -> str:
    """What the model is told when the action was not approved, so it can explain or retry."""
    if state.status == "approved" and state.mode == "draft":
        return "Submitted as a draft: a reviewer decides and the executor applies it; do not retry."
    d = state.decision
    if state.status == "rejected" and d is not None:
        who = d.reviewer_name or d.reviewer_sub or d.decided_by
        reasons = ", ".join(d.reason_codes) or "no reason given"
        comment = f" Comment: {d.comment}" if d.comment else ""
        return f"Rejected by {who}. Reasons: {reasons}.{comment}"
    return f"Not approved: the proposal is {state.status}."


class SignoffGate:
    """Gates tools of an openai-agents `Agent` behind Signoff decisions."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        timeout: float | None = None,
        task_id: str | None = None,
        summary: Callable[[str, dict[str, Any]], str] | None = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.task_id = task_id
        self.summary = summary or (lambda tool, args: f"{tool}({json.dumps(args, sort_keys=True)})"[:500])
        self._action_types: dict[str, str] = {}
        self._approved: dict[str, tuple[AsyncProposalHandle, dict[str, Any]]] = {}
        self.decisions: list[DecisionState] = []
        self.interruptions_resolved = 0

    def tool(self, fn: Callable[..., Any], *, action_type: str, **function_tool_kwargs: Any) -> FunctionTool:
        """A `function_tool` with `needs_approval=True` that runs the approved arguments and reports."""
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def gated(*args: Any, **kwargs: Any) -> Any:
            handle = _handle.get()
            try:
                result = (
                    await fn(*args, **kwargs) if is_async else await asyncio.to_thread(fn, *args, **kwargs)
                )
            except Exception as exc:
                if handle is not None:
                    await handle.report("failed", error=f"{type(exc).__name__}: {exc}")
                raise
            if handle is not None:
                await handle.report("succeeded", result)
            return result

        ft = function_tool(gated, needs_approval=True, **function_tool_kwargs)
        original = ft.on_invoke_tool

        async def on_invoke(ctx: ToolContext[Any], _arguments: str) -> Any:
            approved = self._approved.pop(ctx.tool_call_id, None)
            if approved is None:
                # Called without going through gate.run: ask Signoff now, inline.
                args = json.loads(_arguments or "{}")
                handle, state = await self._decide(ft.name, args, ctx.tool_call_id)
                if not (state.status == "approved" and state.mode != "draft"):
                    return rejection_message(state)
                approved = (handle, state.payload)
            handle, payload = approved
            token = _handle.set(handle)
            try:
                return await original(ctx, json.dumps(payload))
            finally:
                _handle.reset(token)

        ft.on_invoke_tool = on_invoke
        self._action_types[ft.name] = action_type
        return ft

    async def _decide(
        self, tool_name: str, args: dict[str, Any], call_id: str
    ) -> tuple[AsyncProposalHandle, DecisionState]:
        action_type = self._action_types[tool_name]
        key = f"oa-{self.task_id}-{call_id}" if self.task_id else None
        handle = await self.client.propose(
            action_type,
            args,
            summary=self.summary(tool_name, args),
            evidence=[
                {"kind": "tool_call", "title": tool_name, "content": {"call_id": call_id, "args": args}}
            ],
            idempotency_key=key,
        )
        if handle.mode == "draft" and handle.status == "pending":
            state = await self.client.decision(handle.id)
        else:
            state = await handle.wait(self.timeout)
        self.decisions.append(state)
        return handle, state

    async def resolve(self, state: Any, item: ToolApprovalItem) -> DecisionState:
        """Turn one interruption into a Signoff proposal and apply the decision to the run state."""
        name = item.tool_name or ""
        if name not in self._action_types:
            raise NotApproved("", "unknown", f"Tool {name!r} is not gated by this SignoffGate.")
        call_id = getattr(item.raw_item, "call_id", None) or item.raw_item.get("call_id")  # type: ignore[union-attr]
        handle, decision = await self._decide(name, json.loads(item.arguments or "{}"), call_id)
        self.interruptions_resolved += 1
        if decision.status == "approved" and decision.mode != "draft":
            self._approved[call_id] = (handle, decision.payload)
            state.approve(item)
        else:
            state.reject(item, rejection_message=rejection_message(decision))
        return decision

    async def run(self, agent: Agent[Any], input: Any, **run_kwargs: Any) -> RunResult:
        """`Runner.run` until the run finishes, resolving each approval interruption via Signoff."""
        result = await Runner.run(agent, input, **run_kwargs)
        while result.interruptions:
            state = result.to_state()
            for item in result.interruptions:
                await self.resolve(state, item)
            result = await Runner.run(agent, state, **run_kwargs)
        return result
