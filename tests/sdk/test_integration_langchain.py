"""LangChain v1 `create_agent` with `HumanInTheLoopMiddleware`, Signoff deciding: a scripted
chat model calls two gated tools in one turn; both proposals reach the queue together; one
is approved with an edit, one rejected; the agent resumes, runs only the approved call with
the edited arguments, shows the edit in its transcript and reports the outcome."""

import uuid
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

import signoff
from signoff.integrations.langchain import resume_agent_with_signoff, signoff_middleware
from tests.support.factories import AgentCreds, refund_payload
from tests.support.sdk_helpers import age_idempotency_keys, proposals_of, receipt_jti_of, tampered_payload
from tests.support.servers import ApiServer


class ScriptedModel(GenericFakeChatModel):
    """Answers from a script; tools are described to it by the script, not bound."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def _agent(client: signoff.Client, calls: list[dict[str, Any]], *args_list: dict[str, Any]) -> Any:
    @tool
    def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> str:
        """Refund an order."""
        calls.append({"order_id": order_id, "amount_usd": amount_usd})
        return f"refunded {amount_usd} on {order_id}"

    tool_calls = [{"name": "refund", "args": a, "id": f"call_{i}"} for i, a in enumerate(args_list)]
    model = ScriptedModel(
        messages=iter([AIMessage(content="", tool_calls=tool_calls), AIMessage(content="All done.")])
    )
    return create_agent(
        model,
        tools=[refund],
        middleware=signoff_middleware(client, {"refund": "refund"}, wait_timeout=30),
        checkpointer=InMemorySaver(),
    )


def _decide(api: Any, headers: dict[str, str], pid: str, body: dict[str, Any]) -> None:
    r = api.post(f"/v1/proposals/{pid}/decisions", json=body, headers=headers)
    assert r.status_code == 201, r.text


def test_a_turn_of_two_calls_proposed_together_decided_and_reported(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], api: Any
) -> None:
    client = signoff.Client(server.url, agent.key)
    first, second = refund_payload(120), refund_payload(700)
    calls: list[dict[str, Any]] = []
    graph = _agent(client, calls, first, second)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}

    paused = graph.invoke({"messages": [HumanMessage("Refund both")]}, config)
    (intr,) = paused["__interrupt__"]
    assert [a["args"] for a in intr.value["action_requests"]] == [first, second]
    queue = api.get("/v1/queue", params={"agent": agent.name, "status": "pending"}, headers=lead).json()
    by_order = {item["payload"]["order_id"]: item["id"] for item in queue["items"]}
    assert set(by_order) == {first["order_id"], second["order_id"]}  # both before any decision
    assert calls == []

    edit = {"verdict": "approve", "edited_payload": {**first, "amount_usd": 90}, "comment": "partial refund"}
    _decide(api, lead, by_order[first["order_id"]], edit)
    _decide(api, lead, by_order[second["order_id"]], {"verdict": "reject", "reason_codes": ["not_eligible"]})
    final = resume_agent_with_signoff(graph, config, client, timeout=30)
    assert final is not None
    assert calls == [{"order_id": first["order_id"], "amount_usd": 90}]  # once, with the edit

    tool_msgs = {m.tool_call_id: m for m in final["messages"] if isinstance(m, ToolMessage)}
    edited = str(tool_msgs["call_0"].content)  # LangChain's edit notice: the model sees what ran
    assert "reviewer replaced this tool call" in edited and '"amount_usd": 90' in edited
    assert tool_msgs["call_1"].status == "error" and "not_eligible" in str(tool_msgs["call_1"].content)
    assert final["messages"][-1].content == "All done."
    rows = {r.payload["order_id"]: r for r in proposals_of(agent)}
    assert len(rows) == 2
    assert rows[first["order_id"]].status == "executed" and rows[second["order_id"]].status == "rejected"


def test_a_late_resume_proposes_nothing_new(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], api: Any
) -> None:
    client = signoff.Client(server.url, agent.key)
    args = refund_payload(55)
    calls: list[dict[str, Any]] = []
    graph = _agent(client, calls, args)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (row,) = proposals_of(agent)
    assert age_idempotency_keys(agent, hours=25) >= 1
    _decide(api, lead, row.id, {"verdict": "approve"})
    final = resume_agent_with_signoff(graph, config, client, timeout=30)
    assert final is not None and len(calls) == 1
    (after,) = proposals_of(agent)
    assert after.id == row.id and after.status == "executed"
    assert receipt_jti_of(row.id) is not None  # reported with the receipt it checked


def test_a_payload_changed_after_approval_is_refused_and_never_run(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], api: Any
) -> None:
    client = signoff.Client(server.url, agent.key)
    calls: list[dict[str, Any]] = []
    graph = _agent(client, calls, refund_payload(65))
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    graph.invoke({"messages": [HumanMessage("Refund")]}, config)
    (row,) = proposals_of(agent)
    _decide(api, lead, row.id, {"verdict": "approve"})
    with tampered_payload(row.id, {"amount_usd": 9000.0}):
        final = resume_agent_with_signoff(graph, config, client, timeout=30)
    assert final is not None and calls == []
    tool_msg = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "error" and str(tool_msg.content).startswith("Not run: Receipt refused")
    (after,) = proposals_of(agent)
    assert after.status == "approved" and receipt_jti_of(row.id) is None  # nothing reported
