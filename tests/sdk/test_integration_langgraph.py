"""LangGraph end to end: a scripted chat model calls a gated tool; the graph interrupts in the
human-in-the-loop shape; a reviewer decides mid-run in Signoff; the graph resumes."""

import uuid
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

import signoff
from signoff.integrations.langgraph import SignoffToolNode, resume_with_signoff, run_with_signoff
from tests.support.factories import AgentCreds, refund_payload
from tests.support.sdk_helpers import (
    Reviewer,
    age_idempotency_keys,
    proposals_of,
    receipt_jti_of,
    tampered_payload,
)
from tests.support.servers import ApiServer


def _graph(client: signoff.Client, args: dict[str, Any], calls: list[dict[str, Any]]) -> Any:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[{"name": "refund", "args": args, "id": "call_1"}]),
                AIMessage(content="All done."),
                AIMessage(content="All done."),  # for a run resumed twice (a crash)
            ]
        )
    )

    def refund(**payload: Any) -> str:
        calls.append(payload)
        return f"refunded {payload['amount_usd']}"

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", SignoffToolNode({"refund": (refund, "refund")}, client))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


def test_interrupt_in_hitl_shape_then_resume_with_an_edit(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    client = signoff.Client(server.url, agent.key)
    args = refund_payload(150)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, args, calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}

    paused = graph.invoke({"messages": [HumanMessage("Refund my blender")]}, config)
    (intr,) = paused["__interrupt__"]
    assert intr.value["action_requests"] == [
        {"name": "refund", "args": args, "description": intr.value["action_requests"][0]["description"]}
    ]
    assert intr.value["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    assert calls == []
    (pid,) = intr.value["signoff"]["proposal_ids"]

    Reviewer(server.url, lead, agent, edited_payload={**args, "amount_usd": 30.0}, delay=0.3)
    final = resume_with_signoff(graph, config, client, timeout=30)
    assert final is not None
    assert calls == [{**args, "amount_usd": 30.0}]
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.content.startswith("refunded 30.0\n") and "edited" in tool_msg.content
    assert final["messages"][-1].content == "All done."
    (row,) = proposals_of(agent)  # the node ran twice (before and after the interrupt): one proposal
    assert row.id == pid and row.status == "executed"
    assert receipt_jti_of(pid) is not None  # reported with the receipt it checked


def test_rejection_becomes_an_error_tool_message(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    client = signoff.Client(server.url, agent.key)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, refund_payload(500), calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    Reviewer(server.url, lead, agent, verdict="reject", reason_codes=["not_eligible"], comment="final sale")
    final = run_with_signoff(graph, {"messages": [HumanMessage("Refund")]}, config, client, timeout=30)
    assert calls == []
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert (
        tool_msg.status == "error" and "not_eligible" in tool_msg.content and "final sale" in tool_msg.content
    )
    (row,) = proposals_of(agent)
    assert row.status == "rejected"


def test_resume_after_the_idempotency_window_runs_the_tool_exactly_once(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    client = signoff.Client(server.url, agent.key)
    args = refund_payload(80)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, args, calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    paused = graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (pid,) = paused["__interrupt__"][0].value["signoff"]["proposal_ids"]

    assert age_idempotency_keys(agent, hours=25) >= 1  # the key that placed it is gone
    Reviewer(server.url, lead, agent)
    final = resume_with_signoff(graph, config, client, timeout=30)
    assert final is not None and calls == [args]
    (row,) = proposals_of(agent)  # no second proposal, no stray pending one
    assert row.id == pid and row.status == "executed"


def test_a_crash_after_the_report_does_not_run_the_tool_again(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    """The process dies after reporting, before LangGraph saved the checkpoint: the next
    resume starts from the older checkpoint, finds the proposal executed and says so."""
    import copy

    client = signoff.Client(server.url, agent.key)
    args = refund_payload(60)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, args, calls)
    saver = graph.checkpointer
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    before = copy.deepcopy((saver.storage, saver.writes, saver.blobs))

    Reviewer(server.url, lead, agent)
    resume_with_signoff(graph, config, client, timeout=30)
    assert calls == [args]
    saver.storage, saver.writes, saver.blobs = before  # lost: the checkpoint after the run

    final = resume_with_signoff(graph, config, client, timeout=30)
    assert final is not None and calls == [args]  # not run again
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "success" and tool_msg.content == f"refunded {args['amount_usd']}"
    (row,) = proposals_of(agent)
    assert row.status == "executed"


def test_signoff_not_the_resume_value_decides(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    """A HITL client resuming with "approve" cannot run what the reviewer rejected, and a
    cancelled proposal is reported as cancelled."""
    from langgraph.types import Command

    client = signoff.Client(server.url, agent.key)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, refund_payload(900), calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    paused = graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (pid,) = paused["__interrupt__"][0].value["signoff"]["proposal_ids"]
    reviewer = Reviewer(server.url, lead, agent, verdict="reject", reason_codes=["not_eligible"])
    reviewer.join(30)
    final = graph.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert calls == []
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "error" and "not_eligible" in tool_msg.content

    graph = _graph(client, refund_payload(901), calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    paused = graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (pid,) = paused["__interrupt__"][0].value["signoff"]["proposal_ids"]
    client.cancel(pid)
    final = resume_with_signoff(graph, config, client, timeout=30)
    assert final is not None and calls == []
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "error" and "cancelled" in tool_msg.content


def test_a_payload_changed_after_approval_is_refused_and_never_run(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    client = signoff.Client(server.url, agent.key)
    calls: list[dict[str, Any]] = []
    graph = _graph(client, refund_payload(70), calls)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    paused = graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (pid,) = paused["__interrupt__"][0].value["signoff"]["proposal_ids"]
    Reviewer(server.url, lead, agent).finish()
    with tampered_payload(pid, {"amount_usd": 9000.0}):
        final = resume_with_signoff(graph, config, client, timeout=30)
    assert final is not None and calls == []
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "error" and tool_msg.content.startswith("Not run: Receipt refused")
    (row,) = proposals_of(agent)
    assert row.status == "approved" and receipt_jti_of(pid) is None  # nothing reported
