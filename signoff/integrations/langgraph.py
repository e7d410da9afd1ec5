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

from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, interrupt

from signoff.client import Client
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


class SignoffToolNode:
    """Runs the last AI message's tool calls; the gated ones only after a decision.

    `tools` maps a tool name to `(function, action_type)`; `action_type=None` runs ungated.
    The node proposes under an Idempotency-Key made of the thread id and the tool call id,
    so LangGraph's re-execution of the node on resume finds the same proposal.
    """

    def __init__(self, tools: dict[str, tuple[Callable[..., Any], str | None]], client: Client) -> None:
        self.tools = tools
        self.client = client

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        calls = last.tool_calls if isinstance(last, AIMessage) else []
        thread = get_config().get("configurable", {}).get("thread_id", "no-thread")
        gated = [c for c in calls if self.tools.get(c["name"], (None, None))[1]]
        handles = {
            c["id"]: self.client.propose(
                self.tools[c["name"]][1],  # type: ignore[arg-type]
                c["args"],
                summary=f"{c['name']} requested by the agent",
                evidence=[
                    {"kind": "tool_call", "title": c["name"], "content": {"id": c["id"], "args": c["args"]}}
                ],
                idempotency_key=f"lg-{thread}-{c['id']}",
            )
            for c in gated
        }
        decisions: list[dict[str, Any]] = []
        if gated:
            answer = interrupt(
                {
                    "action_requests": [
                        {
                            "name": c["name"],
                            "args": c["args"],
                            "description": f"Signoff proposal {handles[c['id']].id}",
                        }
                        for c in gated
                    ],
                    "review_configs": [
                        {"action_name": c["name"], "allowed_decisions": ALLOWED} for c in gated
                    ],
                    "signoff": {"proposal_ids": [handles[c["id"]].id for c in gated]},
                }
            )
            decisions = list(answer["decisions"])
        by_call = dict(zip([c["id"] for c in gated], decisions, strict=True))
        messages = [self._run(c, by_call.get(c["id"]), handles.get(c["id"])) for c in calls]
        return {"messages": messages}

    def _run(self, call: dict[str, Any], decision: dict[str, Any] | None, handle: Any) -> ToolMessage:
        fn = self.tools[call["name"]][0]
        args = call["args"]
        if decision is not None:
            if decision["type"] == "reject":
                return ToolMessage(
                    decision.get("message", "Rejected."), tool_call_id=call["id"], status="error"
                )
            if decision["type"] == "edit":
                args = decision["edited_action"]["args"]
        try:
            result = fn(**args)
        except Exception as exc:
            if handle is not None:
                handle.report("failed", error=f"{type(exc).__name__}: {exc}")
            return ToolMessage(f"Error: {exc}", tool_call_id=call["id"], status="error")
        if handle is not None:
            handle.report("succeeded", result)
        return ToolMessage(str(result), tool_call_id=call["id"])


def _pending(graph: Any, config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(interrupt id, [(proposal id, tool name)]) for each pending Signoff interrupt."""
    found = []
    for task in graph.get_state(config).tasks:
        for intr in getattr(task, "interrupts", ()):
            value = intr.value
            if isinstance(value, dict) and "signoff" in value:
                names = [a["name"] for a in value["action_requests"]]
                found.append((intr.id, list(zip(value["signoff"]["proposal_ids"], names, strict=True))))
    return found


def resume_with_signoff(
    graph: Any, config: dict[str, Any], client: Client, timeout: float | None = None
) -> dict[str, Any] | None:
    """Wait for Signoff decisions on the graph's pending interrupts and resume, until none are left."""
    output = None
    while pending := _pending(graph, config):
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
