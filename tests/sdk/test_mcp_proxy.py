"""`signoff mcp proxy` in front of a real third-party MCP server (the npm
`@modelcontextprotocol/server-filesystem`, installed by scripts/ensure-node.sh): its tools are
listed unchanged; `write_file` is gated: it runs once, after approval, with the reviewer's
edited arguments; a rejection is an error result and nothing is written; `read_file` is not
gated and passes through."""

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters

from backend.catalog import action_types
from backend.core.db import transaction
from models.action_types import ActionTypeUpdate, ReasonCode
from tests.support.factories import AgentCreds, make_agent
from tests.support.sdk_helpers import Reviewer, proposals_of, receipt_jti_of, tampered_payload
from tests.support.servers import ROOT, ApiServer

FS_SERVER = ROOT / "tests/support/node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
FILE_WRITE = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"],
}


@pytest.fixture
def writer(db: Any) -> AgentCreds:
    with transaction() as session:
        spec = ActionTypeUpdate(
            payload_schema=FILE_WRITE, reason_codes=[ReasonCode(code="unsafe", label="Unsafe write")]
        )
        action_types.put(session, "file_write", spec, "system:test")
    return make_agent(grants=("file_write",))


def _upstream(root: Path) -> StdioServerParameters:
    node = shutil.which("node")
    assert node and FS_SERVER.exists(), "run scripts/ensure-node.sh"
    return StdioServerParameters(command=node, args=[str(FS_SERVER), str(root)])


def _proxy(server: ApiServer, agent: AgentCreds, root: Path, wait: int = 60) -> StdioServerParameters:
    up = _upstream(root)
    env = {**os.environ, "SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": agent.key}
    args = ["-m", "backend.cli", "mcp", "proxy", "--gate", "write_file=file_write", "--wait", str(wait), "--"]
    command = [*args, up.command, *up.args]
    return StdioServerParameters(command=sys.executable, args=command, env=env, cwd=ROOT)


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_a_third_party_mcp_server_behind_signoff(
    server: ApiServer, writer: AgentCreds, lead: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path.resolve()
    target = root / "note.txt"

    async def scripted_agent() -> dict[str, Any]:
        async with Client(_upstream(root)) as direct:
            plain = (await direct.list_tools()).tools
        async with Client(_proxy(server, writer, root), read_timeout_seconds=90) as client:
            proxied = (await client.list_tools()).tools
            Reviewer(server.url, lead, writer, edited_payload={"path": str(target), "content": "edited"})
            approved = await client.call_tool("write_file", {"path": str(target), "content": "original"})
            read = await client.call_tool("read_text_file", {"path": str(target)})
            Reviewer(server.url, lead, writer, verdict="reject", reason_codes=["unsafe"])
            refused = await client.call_tool("write_file", {"path": str(root / "other.txt"), "content": "x"})
        return {"plain": plain, "proxied": proxied, "approved": approved, "read": read, "refused": refused}

    out = asyncio.run(scripted_agent())
    # Unchanged: names, descriptions, schemas and annotations (task support, `execution`, is
    # negotiated per connection and not forwarded).
    keys = ("name", "title", "description", "input_schema", "output_schema", "annotations", "meta")
    dump = [{k: t.model_dump()[k] for k in keys} for t in out["plain"]]
    assert dump and [{k: t.model_dump()[k] for k in keys} for t in out["proxied"]] == dump
    assert any(t.annotations for t in out["proxied"])
    assert not out["approved"].is_error, _text(out["approved"])
    assert target.read_text() == "edited"  # the reviewer's arguments, not the model's
    assert "edited" in _text(out["approved"])
    assert not out["read"].is_error and "edited" in _text(out["read"])
    refused = _text(out["refused"])
    assert out["refused"].is_error and "rejected" in refused and "unsafe" in refused
    assert not (root / "other.txt").exists()
    rows = sorted(proposals_of(writer), key=lambda r: r.created_at)
    assert [r.status for r in rows] == ["executed", "rejected"]  # one proposal per gated call
    assert receipt_jti_of(rows[0].id) is not None  # reported with the receipt it checked


def test_elicitation_asks_whether_to_keep_waiting(
    server: ApiServer, writer: AgentCreds, lead: dict[str, str], tmp_path: Path
) -> None:
    """No decision within --wait: a client that supports elicitation is asked; "no" cancels
    the proposal (nothing runs), "yes" keeps waiting until the reviewer approves."""
    import mcp_types as types

    root = tmp_path.resolve()
    answers = iter([False, True])
    asked: list[str] = []

    async def elicit(_context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        keep = next(answers)
        if keep:
            Reviewer(server.url, lead, writer, delay=0.1)  # a reviewer turns up while we wait on
        return types.ElicitResult(action="accept", content={"keep_waiting": keep})

    async def scripted_agent() -> tuple[Any, Any]:
        params = _proxy(server, writer, root, wait=1)
        async with Client(params, read_timeout_seconds=90, elicitation_callback=elicit) as client:
            given_up = await client.call_tool("write_file", {"path": str(root / "a.txt"), "content": "a"})
            waited = await client.call_tool("write_file", {"path": str(root / "b.txt"), "content": "b"})
        return given_up, waited

    given_up, waited = asyncio.run(scripted_agent())
    assert len(asked) >= 2 and "no decision yet" in asked[0]
    assert given_up.is_error and "cancelled" in _text(given_up) and not (root / "a.txt").exists()
    assert not waited.is_error and (root / "b.txt").read_text() == "b"
    rows = sorted(proposals_of(writer), key=lambda r: r.created_at)
    assert [r.status for r in rows] == ["cancelled", "executed"]


def test_a_payload_changed_after_approval_is_refused_and_never_run(
    server: ApiServer, writer: AgentCreds, lead: dict[str, str], tmp_path: Path
) -> None:
    """The proxy's run step, in process, against the real upstream server (a proxy process
    would decide before the test could change the row): the receipt does not prove the
    payload Signoff now hands out, so nothing is written and nothing is reported."""
    import httpx

    import signoff
    from signoff.integrations.mcp_proxy import Proxy, ProxyConfig

    root = tmp_path.resolve()
    target = root / "note.txt"

    async def run_step() -> tuple[str, Any]:
        async with signoff.AsyncClient(server.url, writer.key) as client:
            args = {"path": str(target), "content": "a"}
            handle = await client.propose("file_write", args, summary="write")
            async with httpx.AsyncClient(base_url=server.url, headers=lead) as reviewer:
                r = await reviewer.post(f"/v1/proposals/{handle.id}/decisions", json={"verdict": "approve"})
                assert r.status_code == 201, r.text
            with tampered_payload(handle.id, {"content": "rm -rf"}):
                state = await client.decision(handle.id)
                async with Client(_upstream(root)) as upstream:
                    proxy = Proxy(ProxyConfig(gates={"write_file": "file_write"}), client)
                    return handle.id, await proxy._run(upstream, "write_file", handle, state)

    pid, result = asyncio.run(run_step())
    assert result.is_error and _text(result).startswith("Not run: Receipt refused")
    assert not target.exists()
    (row,) = proposals_of(writer)
    assert row.status == "approved" and receipt_jti_of(pid) is None  # nothing reported
