"""LangGraph: a tool node that interrupts for approval and resumes with the reviewer's decision.

The interrupt and the resume value use LangGraph's human-in-the-loop shape (as LangChain's
`HumanInTheLoopMiddleware` does): the node calls ``interrupt({"action_requests": [...],
"review_configs": [...]})`` and resumes with ``{"decisions": [{"type": "approve"} |
{"type": "edit", "edited_action": {"name", "args"}} | {"type": "reject", "message"}]}``.
Signoff supplies those decisions: each gated tool call becomes a proposal (its id is in the
interrupt under ``"signoff"``), and :func:`resume_with_signoff` waits for the reviewers and
resumes the graph. Any other HITL client (an inbox UI) can resume the same interrupt too.

    tools = SignoffToolNode({"refund": (refund, "refund")}, client)
    graph.add_node("tools", tools)
    result = run_with_signoff(graph, {"messages": [...]}, config, client)
"""

import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.config import get_config
from langgraph.func import task
from langgraph.types import Command, interrupt

from signoff.client import Client
from signoff.errors import ReceiptInvalid
from signoff.integrations import refusal
from signoff.types import DecisionState

ALLOWED = ["approve", "edit", "reject"]


def to_hitl_decision(state: DecisionState, tool_name: str) -> dict[str, Any]:
    """A Signoff decision in LangGraph's HITL decision shape."""
    if state.status == "approved" and state.mode != "draft":
        if state.edited:
            return {"type": "edit", "edited_action": {"name": tool_name, "args": state.payload}}
        return {"type": "approve"}
    d = state.decision
    if state.status == "approved":
        message = "Submitted as a draft: a reviewer decides and the executor applies it."
    elif state.status == "rejected" and d is not None:
        who = d.reviewer_name or d.reviewer_sub or d.decided_by
        comment = f" Comment: {d.comment}" if d.comment else ""
        message = f"Rejected by {who}. Reasons: {', '.join(d.reason_codes) or 'none given'}.{comment}"
    else:
        message = f"Not approved: the proposal is {state.status}."
    return {"type": "reject", "message": message}


def outcome_message(state: DecisionState, execution: Any = None) -> tuple[str, str]:
    """(content, status) of the tool message for a proposal that will not run now: every
    final state says what happened, so the model is never told "not approved" about an
    action that ran."""
    if state.status == "executed":
        result = getattr(execution, "result", None)
        return (str(result) if result is not None else "Done (already executed)."), "success"
    if state.status == "failed":
        error = getattr(execution, "error", None) or "no detail"
        return f"The action was approved but failed when run: {error}", "error"
    if state.status == "approved" and state.mode == "draft":
        return "Submitted as a draft: a reviewer decides and the executor applies it.", "success"
    if state.status == "observed":
        return "Recorded for observation only: the action was not run.", "success"
    if state.status == "expired":
        return "Not approved: the proposal expired before a reviewer decided.", "error"
    if state.status == "cancelled":
        return "Not approved: the proposal was cancelled.", "error"
    return str(to_hitl_decision(state, "").get("message", f"Not approved: {state.status}.")), "error"


class SignoffToolNode:
    """Runs the last AI message's tool calls; the gated ones only after a decision.

    `tools` maps a tool name to `(function, action_type)`; `action_type=None` runs ungated.

    Exactly once, by proposal id: the proposals are placed in a LangGraph task, whose result
    (the proposal ids) is saved in the checkpoint; when the node runs again on resume, however
    long after (past the server's 24 h idempotency window too), it reads the ids back instead
    of proposing again. Signoff, not the resume value, says what was decided: on resume the
    node reads each proposal's state, runs an approved tool (in a task of its own) with the
    approved arguments, reports the outcome, and maps every other final state to its
    message. A proposal already ``executed`` (a crash after the report, before the
    checkpoint) is not run again: its recorded result is the answer.
    """

    def __init__(
        self,
        tools: dict[str, tuple[Callable[..., Any], str | None]],
        client: Client,
        wait_timeout: float | None = None,
    ) -> None:
        self.tools = tools
        self.client = client
        self.wait_timeout = wait_timeout
        self._place = task(name="signoff_place")(self._place_proposals)
        self._execute = task(name="signoff_execute")(self._execute_approved)

    def _place_proposals(self, thread: str, calls: list[dict[str, Any]]) -> list[str]:
        return [
            self.client.propose(
                self.tools[c["name"]][1],  # type: ignore[arg-type]
                c["args"],
                summary=f"{c['name']} requested by the agent",
                evidence=[
                    {"kind": "tool_call", "title": c["name"], "content": {"id": c["id"], "args": c["args"]}}
                ],
                idempotency_key=f"lg-{thread}-{c['id']}",
            ).id
            for c in calls
        ]

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        calls = last.tool_calls if isinstance(last, AIMessage) else []
        thread = str(get_config().get("configurable", {}).get("thread_id", "no-thread"))
        gated = [dict(c) for c in calls if self.tools.get(c["name"], (None, None))[1]]
        ids: dict[str, str] = {}
        if gated:
            placed = self._place(thread, gated).result()
            ids = dict(zip([c["id"] for c in gated], placed, strict=True))
            interrupt(
                {
                    "action_requests": [
                        {"name": c["name"], "args": c["args"], "description": f"Signoff proposal {pid}"}
                        for c, pid in zip(gated, placed, strict=True)
                    ],
                    "review_configs": [
                        {"action_name": c["name"], "allowed_decisions": ALLOWED} for c in gated
                    ],
                    "signoff": {"proposal_ids": placed},
                }
            )
        messages = [self._answer(dict(c), ids.get(c["id"])) for c in calls]
        return {"messages": messages}

    def _answer(self, call: dict[str, Any], proposal_id: str | None) -> ToolMessage:
        if proposal_id is None:  # ungated
            content, status = _run_tool(self.tools[call["name"]][0], call["args"], None)
            return ToolMessage(content, tool_call_id=call["id"], status=status)
        decided = self.client.wait(proposal_id, self.wait_timeout)
        if decided.status == "approved" and decided.mode != "draft":
            content, status = self._execute(call["name"], decided).result()
            if decided.edited:
                content += f"\n(A reviewer edited the arguments; it ran with: {json.dumps(decided.payload)})"
        else:
            execution = None
            if decided.status in ("executed", "failed"):
                execution = self.client.get(proposal_id).execution
            content, status = outcome_message(decided, execution)
        return ToolMessage(content, tool_call_id=call["id"], status=status)

    def _execute_approved(self, name: str, decided: DecisionState) -> tuple[str, str]:
        proposal_id, args = decided.proposal_id, decided.payload
        current = self.client.get(proposal_id)
        if current.status in ("executed", "failed"):  # reported before a crash: never run twice
            state = DecisionState(
                proposal_id=current.id,
                status=current.status,
                mode=current.mode,
                decided=True,
                payload=args,
                expires_at=current.expires_at,
            )
            return outcome_message(state, current.execution)
        try:  # inside the task: a replayed node reads the outcome back, never re-checks a used receipt
            jti = self.client.check_receipt(decided)["jti"]
        except ReceiptInvalid as exc:
            return refusal(exc), "error"
        return _run_tool(self.tools[name][0], args, self.client.handle(proposal_id), jti)


def _run_tool(
    fn: Callable[..., Any], args: dict[str, Any], handle: Any, receipt_jti: str | None = None
) -> tuple[str, str]:
    try:
        result = fn(**args)
    except Exception as exc:
        if handle is not None:
            handle.report("failed", error=f"{type(exc).__name__}: {exc}", receipt_jti=receipt_jti)
        return f"Error: {exc}", "error"
    if handle is not None:
        handle.report("succeeded", result, receipt_jti=receipt_jti)
    return str(result), "success"


def _pending(graph: Any, config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(interrupt id, [(proposal id, tool name)]) for each pending Signoff interrupt."""
    found = []
    for pending_task in graph.get_state(config).tasks:
        for intr in getattr(pending_task, "interrupts", ()):
            value = intr.value
            if isinstance(value, dict) and "signoff" in value:
                names = [a["name"] for a in value["action_requests"]]
                found.append((intr.id, list(zip(value["signoff"]["proposal_ids"], names, strict=True))))
    return found


def resume_with_signoff(
    graph: Any, config: dict[str, Any], client: Client, timeout: float | None = None
) -> dict[str, Any] | None:
    """Wait for Signoff decisions on the graph's pending interrupts and resume, until none are left."""
    return resume_pending(graph, config, client, timeout, _pending)


def resume_pending(
    graph: Any,
    config: dict[str, Any],
    client: Client,
    timeout: float | None,
    pending_of: Callable[[Any, dict[str, Any]], list[tuple[str, list[tuple[str, str]]]]],
) -> dict[str, Any] | None:
    """The resume loop both HITL shapes share: wait for each interrupt's proposals (found by
    ``pending_of``), resume with their decisions, until none are left."""
    output = None
    while pending := pending_of(graph, config):
        answers = {
            interrupt_id: {
                "decisions": [to_hitl_decision(client.wait(pid, timeout), name) for pid, name in calls]
            }
            for interrupt_id, calls in pending
        }
        resume = next(iter(answers.values())) if len(answers) == 1 else answers
        output = graph.invoke(Command(resume=resume), config)
    return output


def run_with_signoff(
    graph: Any, input: Any, config: dict[str, Any], client: Client, timeout: float | None = None
) -> dict[str, Any]:
    """`graph.invoke` then resume through every Signoff-gated interrupt; returns the final state."""
    output = graph.invoke(input, config)
    resumed = resume_with_signoff(graph, config, client, timeout)
    return resumed if resumed is not None else output
