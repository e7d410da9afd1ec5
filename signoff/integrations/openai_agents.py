"""OpenAI Agents SDK: tools whose `needs_approval` interruptions are resolved by Signoff.

    gate = SignoffGate(signoff.AsyncClient())
    refund_tool = gate.tool(refund, action_type="refund")
    agent = Agent(name="support", tools=[refund_tool])
    result = await gate.run(agent, "Refund order 42")

`gate.run` drives `Runner.run`: all the interruptions of a turn become Signoff proposals at
once (placed together, so parallel tool calls reach the reviewers together), the decisions
approve or reject them in the run state (a rejection's reasons and comment go back to the
model), and the run resumes. The tool runs with the approved arguments (the reviewer's edit,
if any, shown to the model in the tool's output), once, and its outcome is reported.

Everything the gate knows lives in the `RunState`, in the run's context under ``"signoff"``
(call id -> proposal id, decision, approved arguments), so a run serialized with
``state.to_string()`` resumes in another process with :meth:`SignoffGate.resume`, without a
task id or any memory of the first process. The run's context must therefore be a dict (or
none: the gate makes one).
"""

import asyncio
import contextvars
import functools
import inspect
import json
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from agents import Agent, FunctionTool, Runner, RunResult, RunState, ToolApprovalItem, function_tool
from agents.tool_context import ToolContext

from signoff.client import AsyncClient, AsyncProposalHandle
from signoff.errors import NotApproved, ReceiptInvalid, SignoffError
from signoff.integrations import refusal
from signoff.types import DecisionState

# The proposal being run and its receipt's jti, for the report.
_handle: contextvars.ContextVar[tuple[AsyncProposalHandle, str] | None] = contextvars.ContextVar(
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
    if state.status == "executed":
        return "Already done: the approved action ran."
    return f"Not approved: the proposal is {state.status}."


STATE_KEY = "signoff"


def ledger(state: Any) -> dict[str, dict[str, Any]]:
    """The gate's record inside a `RunState`'s context: call id -> proposal and decision."""
    wrapper = state._context  # the RunState's RunContextWrapper; serialized with the state
    if wrapper.context is None:
        wrapper.context = {}
    if not isinstance(wrapper.context, MutableMapping):
        raise SignoffError("SignoffGate keeps its record in the run's context: pass a dict as context.")
    return wrapper.context.setdefault(STATE_KEY, {})  # type: ignore[no-any-return]


def _call_id(item: ToolApprovalItem) -> str:
    raw = item.raw_item
    return str(getattr(raw, "call_id", None) or raw.get("call_id"))  # type: ignore[union-attr]


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
        self.decisions: list[DecisionState] = []
        self.interruptions_resolved = 0

    def tool(self, fn: Callable[..., Any], *, action_type: str, **function_tool_kwargs: Any) -> FunctionTool:
        """A `function_tool` with `needs_approval=True` that runs the approved arguments and reports."""
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def gated(*args: Any, **kwargs: Any) -> Any:
            running = _handle.get()
            try:
                result = (
                    await fn(*args, **kwargs) if is_async else await asyncio.to_thread(fn, *args, **kwargs)
                )
            except Exception as exc:
                if running is not None:
                    handle, jti = running
                    await handle.report("failed", error=f"{type(exc).__name__}: {exc}", receipt_jti=jti)
                raise
            if running is not None:
                handle, jti = running
                await handle.report("succeeded", result, receipt_jti=jti)
            return result

        ft = function_tool(gated, needs_approval=True, **function_tool_kwargs)
        original = ft.on_invoke_tool

        async def on_invoke(ctx: ToolContext[Any], _arguments: str) -> Any:
            record = ctx.context.get(STATE_KEY, {}) if isinstance(ctx.context, Mapping) else {}
            entry = record.get(ctx.tool_call_id)
            if entry is None or "status" not in entry:
                # Approved without going through the gate: ask Signoff now, inline.
                args = json.loads(_arguments or "{}")
                handle, state = await self._decide(ft.name, args, ctx.tool_call_id)
                entry = _entry(handle.id, state)
            if entry["status"] != "approved":
                return entry["message"]
            current = await self.client.get(entry["proposal_id"])
            handle = AsyncProposalHandle(self.client, current)
            if current.execution is not None:  # already ran (reported before a crash): never twice
                return current.execution.result if current.status == "executed" else current.execution.error
            # The receipt must prove the very arguments that run (the ledger travels in the run state).
            decision = entry.get("decision")  # a ledger from before receipts: ask Signoff
            if decision is None:
                decision = (await self.client.decision(handle.id)).model_dump(mode="json")
            approved = DecisionState.model_validate({**decision, "payload": entry["payload"]})
            try:
                jti = (await self.client.check_receipt(approved))["jti"]
            except ReceiptInvalid as exc:
                return refusal(exc)
            token = _handle.set((handle, jti))
            try:
                output = await original(ctx, json.dumps(entry["payload"]))
            finally:
                _handle.reset(token)
            if entry.get("edited"):
                ran = json.dumps(entry["payload"], sort_keys=True)
                return f"A reviewer edited the arguments; the tool ran with {ran}. Result: {output}"
            return output

        ft.on_invoke_tool = on_invoke
        self._action_types[ft.name] = action_type
        return ft

    async def _propose(self, tool_name: str, args: dict[str, Any], call_id: str) -> AsyncProposalHandle:
        key = f"oa-{self.task_id}-{call_id}" if self.task_id else None
        return await self.client.propose(
            self._action_types[tool_name],
            args,
            summary=self.summary(tool_name, args),
            evidence=[
                {"kind": "tool_call", "title": tool_name, "content": {"call_id": call_id, "args": args}}
            ],
            idempotency_key=key,
        )

    async def _state_of(self, handle_id: str, mode: str, status: str) -> DecisionState:
        if mode == "draft" and status == "pending":
            return await self.client.decision(handle_id)
        return await self.client.wait(handle_id, self.timeout)

    async def _decide(
        self, tool_name: str, args: dict[str, Any], call_id: str
    ) -> tuple[AsyncProposalHandle, DecisionState]:
        handle = await self._propose(tool_name, args, call_id)
        state = await self._state_of(handle.id, handle.mode, handle.status)
        self.decisions.append(state)
        return handle, state

    async def propose_all(self, state: Any, items: list[ToolApprovalItem]) -> list[str]:
        """Place a proposal for each interruption not yet proposed, all at once, and record
        the ids in the run state (persist ``state.to_string()`` after this to survive a crash)."""
        record = ledger(state)
        todo = [i for i in items if _call_id(i) not in record]
        for item in todo:
            if (item.tool_name or "") not in self._action_types:
                raise NotApproved("", "unknown", f"Tool {item.tool_name!r} is not gated by this SignoffGate.")
        handles = await asyncio.gather(
            *(self._propose(i.tool_name or "", json.loads(i.arguments or "{}"), _call_id(i)) for i in todo)
        )
        for item, handle in zip(todo, handles, strict=True):
            record[_call_id(item)] = {"proposal_id": handle.id, "tool": item.tool_name}
        return [record[_call_id(i)]["proposal_id"] for i in items]

    async def resolve_all(self, state: Any, items: list[ToolApprovalItem]) -> list[DecisionState]:
        """Propose what is not proposed yet, wait for all the decisions together, and apply
        each to the run state (approve, or reject with the reviewer's reasons)."""
        await self.propose_all(state, items)
        record = ledger(state)
        ids = [record[_call_id(i)]["proposal_id"] for i in items]
        decided = await asyncio.gather(*(self.client.wait(pid, self.timeout) for pid in ids))
        for item, pid, decision in zip(items, ids, decided, strict=True):
            if decision.status == "pending" and decision.mode == "draft":
                decision = await self.client.decision(pid)
            self.decisions.append(decision)
            self.interruptions_resolved += 1
            record[_call_id(item)] = {**record[_call_id(item)], **_entry(pid, decision)}
            if record[_call_id(item)]["status"] == "approved":
                state.approve(item)
            else:
                state.reject(item, rejection_message=record[_call_id(item)]["message"])
        return list(decided)

    async def resolve(self, state: Any, item: ToolApprovalItem) -> DecisionState:
        """One interruption (see :meth:`resolve_all`, which proposes a turn's calls together)."""
        return (await self.resolve_all(state, [item]))[0]

    async def run(self, agent: Agent[Any], input: Any, **run_kwargs: Any) -> RunResult:
        """`Runner.run` until the run finishes, resolving each turn's interruptions via Signoff."""
        if not isinstance(input, RunState):
            run_kwargs.setdefault("context", {})
        result = await Runner.run(agent, input, **run_kwargs)
        while result.interruptions:
            state = result.to_state()
            await self.resolve_all(state, list(result.interruptions))
            result = await Runner.run(agent, state, **run_kwargs)
        return result

    async def resume(self, agent: Agent[Any], state: "RunState[Any] | str", **run_kwargs: Any) -> RunResult:
        """Resume a run from its `RunState` (or ``to_string()``), in this or another process."""
        if isinstance(state, str):
            state = await RunState.from_string(agent, state)
        await self.resolve_all(state, state.get_interruptions())
        return await self.run(agent, state, **run_kwargs)


def _entry(proposal_id: str, state: DecisionState) -> dict[str, Any]:
    if state.status == "approved" and state.mode != "draft":
        return {
            "proposal_id": proposal_id,
            "status": "approved",
            "payload": state.payload,
            "edited": state.edited,
            "decision": state.model_dump(mode="json"),  # with the receipt, checked when the tool runs
        }
    return {"proposal_id": proposal_id, "status": state.status, "message": rejection_message(state)}
