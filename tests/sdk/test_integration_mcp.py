"""MCP end to end: a scripted MCP agent talks to `signoff mcp` over stdio; a reviewer decides mid-run."""

import asyncio
import json
import os
import sys
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters

import signoff
from signoff.integrations.mcp import build_server
from tests.support.factories import AgentCreds, refund_payload
from tests.support.sdk_helpers import Reviewer, proposals_of
from tests.support.servers import ROOT, ApiServer


def _params(server: ApiServer, agent: AgentCreds) -> StdioServerParameters:
    env = {**os.environ, "SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": agent.key}
    return StdioServerParameters(command=sys.executable, args=["-m", "backend.cli", "mcp"], env=env, cwd=ROOT)


async def _call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


def test_mcp_agent_requests_approval_and_acts_on_the_edited_decision(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    payload = refund_payload(150)
    edited = {**payload, "amount_usd": 60.0}
    executed: list[dict[str, Any]] = []

    async def scripted_agent() -> dict[str, Any]:
        async with Client(_params(server, agent), read_timeout_seconds=60) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"request_approval", "get_decision", "report_execution"} <= names
            asked = await _call(
                client,
                "request_approval",
                action_type="refund",
                payload=payload,
                summary="Refund a cracked blender",
                evidence=[{"kind": "message", "title": "Customer", "content": "It arrived cracked."}],
            )
            assert asked["status"] == "pending" and not asked["decided"]
            Reviewer(server.url, lead, agent, edited_payload=edited, delay=0.3)  # decides mid-run
            decision = await _call(client, "get_decision", proposal_id=asked["proposal_id"], wait_seconds=30)
            if decision["may_execute"]:
                executed.append(decision["payload"])
                await _call(
                    client,
                    "report_execution",
                    proposal_id=asked["proposal_id"],
                    status="succeeded",
                    result={"refund_id": "re_mcp"},
                )
            return decision

    decision = asyncio.run(scripted_agent())
    assert decision["status"] == "approved" and decision["edited"] and decision["reviewer"] == "Lee Lead"
    assert executed == [edited]
    (row,) = proposals_of(agent)
    assert row.status == "executed"


def test_mcp_rejection_carries_the_reasons(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    async def scripted_agent() -> dict[str, Any]:
        async with Client(_params(server, agent), read_timeout_seconds=60) as client:
            Reviewer(
                server.url, lead, agent, verdict="reject", reason_codes=["duplicate"], comment="done already"
            )
            return await _call(
                client, "request_approval", action_type="refund", payload=refund_payload(150), wait_seconds=30
            )

    decision = asyncio.run(scripted_agent())
    assert decision["status"] == "rejected" and not decision["may_execute"]
    assert decision["reason_codes"] == ["duplicate"] and decision["comment"] == "done already"


def test_mcp_reports_api_errors_as_tool_errors(server: ApiServer, agent: AgentCreds) -> None:
    async def scripted_agent() -> tuple[Any, Any]:
        bad = {"amount_usd": -1}
        # In-process this time: the same server object, no subprocess.
        async with signoff.AsyncClient(server.url, agent.key) as api, Client(build_server(api)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            args = {"action_type": "refund", "payload": bad}
            return tools, await client.call_tool("request_approval", args)

    tools, result = asyncio.run(scripted_agent())
    assert result.is_error  # isError: true, so clients and models see a failure
    text = result.content[0].text
    answer = json.loads(text[text.index("{") :])
    assert answer["status_code"] == 422 and answer["error"]["code"] == "invalid_payload"
    assert tools["get_decision"].annotations.read_only_hint is True
    assert tools["request_approval"].annotations.read_only_hint is False
    assert tools["report_execution"].annotations.idempotent_hint is True
