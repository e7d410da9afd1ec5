"""LangChain v1 agents (`create_agent`): Signoff behind `HumanInTheLoopMiddleware`.

LangChain's own middleware pauses the agent with an interrupt per model turn listing the
gated tool calls (``action_requests``) and resumes with ``{"decisions": [...]}``. Signoff
plugs in beside it:

    agent = create_agent(
        model, tools=[refund],
        middleware=signoff_middleware(client, {"refund": "refund"}),  # [HITL, Signoff]
        checkpointer=InMemorySaver(),
    )
    result = run_agent_with_signoff(agent, {"messages": [...]}, config, client)

- :class:`SignoffMiddleware` places one proposal per action request before the interrupt
  (its ``after_model`` runs before the HITL middleware's), under an Idempotency-Key of the
  thread and tool call id, and keeps the proposal ids in the agent's state (so in the
  checkpoint): a resume, however late, finds them there.
- :func:`resume_agent_with_signoff` waits for the reviewers' decisions and resumes the
  interrupt with them in the HITL shape (an edit as ``{"type": "edit", "edited_action"}``,
  so LangChain's edit notice shows the edited arguments in the transcript).
- When the tool is about to run, :class:`SignoffMiddleware` asks Signoff again: only an
  approved proposal runs, with the approved arguments, once (an ``executed`` proposal
  answers with its recorded result), and the outcome is reported.
"""

from collections.abc import Callable
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState, HumanInTheLoopMiddleware
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.config import get_config

from signoff.client import Client
from signoff.errors import ReceiptInvalid
from signoff.integrations import refusal
from signoff.integrations.langgraph import outcome_message, resume_pending


class SignoffAgentState(AgentState[Any]):
    # tool call id -> proposal id, for the gated calls of the current turn (checkpointed).
    signoff_proposals: NotRequired[Annotated[dict[str, str], PrivateStateAttr]]


class SignoffMiddleware(AgentMiddleware[SignoffAgentState, Any, Any]):
    """Places the proposals of a turn's gated tool calls; runs only what Signoff approved.

    List it **after** `HumanInTheLoopMiddleware` (see :func:`signoff_middleware`): its
    ``after_model`` then runs first (LangChain runs after-hooks in reverse), and its
    ``wrap_tool_call`` is the innermost, so Signoff's approved arguments are what run.
    """

    state_schema = SignoffAgentState

    def __init__(
        self, client: Client, action_types: dict[str, str], wait_timeout: float | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.action_types = action_types
        self.wait_timeout = wait_timeout

    def after_model(self, state: SignoffAgentState, runtime: Any) -> dict[str, Any] | None:
        last = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        gated = [c for c in (last.tool_calls if last else []) if c["name"] in self.action_types]
        if not gated:
            return None
        known = dict(state.get("signoff_proposals") or {})
        thread = str(get_config().get("configurable", {}).get("thread_id", "no-thread"))
        placed = {}
        for call in gated:
            if call["id"] in known:
                placed[call["id"]] = known[call["id"]]
                continue
            placed[call["id"]] = self.client.propose(
                self.action_types[call["name"]],
                call["args"],
                summary=f"{call['name']} requested by the agent",
                evidence=[{"kind": "tool_call", "title": call["name"], "content": dict(call)}],
                idempotency_key=f"lc-{thread}-{call['id']}",
            ).id
        return {"signoff_proposals": placed}

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        proposal_id = (request.state.get("signoff_proposals") or {}).get(call.get("id"))
        if call["name"] not in self.action_types:
            return handler(request)
        if proposal_id is None:  # gated, but never proposed: never run
            return ToolMessage("Not run: no Signoff proposal.", tool_call_id=call["id"], status="error")
        decided = self.client.wait(proposal_id, self.wait_timeout)
        current = self.client.get(proposal_id)
        if not (decided.status == "approved" and decided.mode != "draft") or current.execution is not None:
            final = decided.model_copy(update={"status": current.status})
            content, status = outcome_message(final, current.execution)
            return ToolMessage(content, tool_call_id=call["id"], status=status)
        try:
            jti = self.client.check_receipt(decided)["jti"]  # before the tool runs, or never
        except ReceiptInvalid as exc:
            return ToolMessage(refusal(exc), tool_call_id=call["id"], status="error")
        result = handler(request.override(tool_call={**call, "args": decided.payload}))
        message = result if isinstance(result, ToolMessage) else None
        handle = self.client.handle(proposal_id)
        if message is not None and message.status == "error":
            handle.report("failed", error=str(message.content), receipt_jti=jti)
        else:
            content = message.content if message is not None else repr(result)
            handle.report("succeeded", content, receipt_jti=jti)
        return result


def signoff_middleware(
    client: Client, action_types: dict[str, str], wait_timeout: float | None = None, **hitl: Any
) -> list[AgentMiddleware[Any, Any, Any]]:
    """`[HumanInTheLoopMiddleware, SignoffMiddleware]` for `create_agent(middleware=...)`:
    the gated tools are the keys of `action_types` (tool name -> Signoff action type)."""
    return [
        HumanInTheLoopMiddleware(interrupt_on={name: True for name in action_types}, **hitl),
        SignoffMiddleware(client, action_types, wait_timeout),
    ]


def _pending(agent: Any, config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(interrupt id, [(proposal id, tool name)]) for each pending HITL interrupt."""
    snapshot = agent.get_state(config)
    proposals = snapshot.values.get("signoff_proposals") or {}
    last = next((m for m in reversed(snapshot.values.get("messages", [])) if isinstance(m, AIMessage)), None)
    calls = {c["name"]: [] for c in (last.tool_calls if last else [])}  # type: ignore[var-annotated]
    for c in last.tool_calls if last else []:
        calls[c["name"]].append(c["id"])
    found = []
    for pending_task in snapshot.tasks:
        for intr in getattr(pending_task, "interrupts", ()):
            value = intr.value
            if not (isinstance(value, dict) and "action_requests" in value):
                continue
            taken: dict[str, int] = {}
            pairs = []
            for action in value["action_requests"]:
                name = action["name"]
                index = taken.get(name, 0)
                taken[name] = index + 1
                call_id = calls.get(name, [])[index]
                pairs.append((proposals[call_id], name))
            found.append((intr.id, pairs))
    return found


def resume_agent_with_signoff(
    agent: Any, config: dict[str, Any], client: Client, timeout: float | None = None
) -> dict[str, Any] | None:
    """Wait for the Signoff decisions on the agent's pending HITL interrupts and resume with
    them, until none are left; the final state, or None when nothing was pending."""
    return resume_pending(agent, config, client, timeout, _pending)


def run_agent_with_signoff(
    agent: Any, input: Any, config: dict[str, Any], client: Client, timeout: float | None = None
) -> dict[str, Any]:
    """`agent.invoke`, then through every Signoff-gated interrupt; the final state."""
    output = agent.invoke(input, config)
    resumed = resume_agent_with_signoff(agent, config, client, timeout)
    return resumed if resumed is not None else output
