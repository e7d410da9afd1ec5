"""MCP: `signoff mcp` serves the approval queue as tools, so any MCP-capable agent can ask a human.

Tools:
- `request_approval(action_type, payload, summary, evidence, context, idempotency_key, wait_seconds)`
  places a proposal and, with `wait_seconds`, waits for the decision;
- `get_decision(proposal_id, wait_seconds)` long-polls the decision (the payload to execute is
  the reviewer's edit, if any);
- `report_execution(proposal_id, status, result, error)` records what happened.

The server speaks stdio by default and uses `SIGNOFF_URL` / `SIGNOFF_API_KEY` (the agent's key).
"""

import json
from typing import Any, Literal, NoReturn

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from signoff.client import AsyncClient
from signoff.errors import APIError, WaitTimeout
from signoff.types import DecisionState

INSTRUCTIONS = (
    "Before any consequential action, call request_approval with the action and your evidence, "
    "then get_decision until decided. Act only if status is 'approved' and mode is not 'draft', "
    "using the returned payload (a reviewer may have edited it), then call report_execution. "
    "If rejected, tell the user the reasons; do not retry the same action."
)


def _state(state: DecisionState) -> dict[str, Any]:
    d = state.decision
    return {
        "proposal_id": state.proposal_id,
        "status": state.status,
        "mode": state.mode,
        "decided": state.decided,
        "may_execute": state.status == "approved" and state.mode != "draft",
        "payload": state.payload,
        "edited": state.edited,
        "reason_codes": d.reason_codes if d else [],
        "comment": d.comment if d else "",
        "reviewer": (d.reviewer_name or d.reviewer_sub) if d else None,
    }


def _error(exc: APIError) -> NoReturn:
    """An API refusal as a tool error (``isError: true``), its JSON error object as the text."""
    raise ToolError(json.dumps({"error": exc.error, "status_code": exc.status_code})) from exc


# What each tool does to the world, for clients that show or gate tools by their hints.
PROPOSE = ToolAnnotations(
    title="Ask a human to approve an action", readOnlyHint=False, destructiveHint=False, openWorldHint=False
)
READ = ToolAnnotations(title="Read a decision", readOnlyHint=True, openWorldHint=False)
REPORT = ToolAnnotations(
    title="Report what happened",
    readOnlyHint=False,
    destructiveHint=False,
    idempotentHint=True,
    openWorldHint=False,
)


async def _wait(client: AsyncClient, proposal_id: str, wait_seconds: float) -> DecisionState:
    if wait_seconds <= 0:
        return await client.decision(proposal_id)
    try:
        return await client.wait(proposal_id, timeout=min(wait_seconds, 3600))
    except WaitTimeout as exc:
        return exc.state if exc.state is not None else await client.decision(proposal_id)


def build_server(client: AsyncClient | None = None) -> MCPServer:
    """The MCP server; `client` defaults to one configured from the environment."""
    server = MCPServer("signoff", instructions=INSTRUCTIONS)
    holder: dict[str, AsyncClient] = {}

    def api() -> AsyncClient:
        if client is not None:
            return client
        if "c" not in holder:
            holder["c"] = AsyncClient()
        return holder["c"]

    @server.tool(annotations=PROPOSE)
    async def request_approval(
        action_type: str,
        payload: dict[str, Any],
        summary: str = "",
        evidence: list[dict[str, Any]] | None = None,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait_seconds: float = 0,
    ) -> dict[str, Any]:
        """Ask a human to approve an action. Evidence items: {kind: message|record|tool_call|document|note,
        title, content}. Returns the proposal's state; with wait_seconds, waits for the decision."""
        try:
            handle = await api().propose(
                action_type,
                payload,
                summary=summary,
                evidence=evidence,
                context=context,
                idempotency_key=idempotency_key,
            )
            return _state(await _wait(api(), handle.id, wait_seconds))
        except APIError as exc:
            _error(exc)

    @server.tool(annotations=READ)
    async def get_decision(proposal_id: str, wait_seconds: float = 0) -> dict[str, Any]:
        """The decision on a proposal, waiting up to wait_seconds for a reviewer."""
        try:
            return _state(await _wait(api(), proposal_id, wait_seconds))
        except APIError as exc:
            _error(exc)

    @server.tool(annotations=REPORT)
    async def report_execution(
        proposal_id: str,
        status: Literal["succeeded", "failed"],
        result: Any = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Record the outcome of an approved action (once)."""
        try:
            execution = await api().report(proposal_id, status, result, error)
            return execution.model_dump(mode="json")
        except APIError as exc:
            _error(exc)

    return server


def main(transport: str = "stdio") -> None:
    build_server().run(transport)  # type: ignore[arg-type]
