"""`signoff mcp proxy`: any MCP server behind Signoff.

    signoff mcp proxy --gate write_file=file_write -- npx @modelcontextprotocol/server-filesystem /srv
    signoff mcp proxy --gate deploy=deploy --url https://tools.example.com/mcp

The proxy is an MCP server (stdio) in front of the upstream one (a command over stdio, or a
streamable HTTP URL). Its tools are the upstream's, listed unchanged (names, schemas,
annotations). A call to an ungated tool passes through. A call to a gated tool (``--gate
TOOL=ACTION_TYPE``) becomes a Signoff proposal with the call's arguments; the proxy waits
for the decision and, only if approved, calls the upstream tool **once**, with the approved
arguments (the reviewer's edit, if any), and reports the outcome. Anything else (rejected,
expired, a draft, an API error, an upstream failure) answers ``isError: true`` with the
reason, so the calling model sees that the action did not happen. When no decision comes
within ``--wait`` seconds and the client supports elicitation, the person at the client is
asked whether to keep waiting (no cancels the proposal); otherwise the call answers
"no decision yet".

Each call is proposed under an Idempotency-Key made of the tool name and the request's
arguments plus ``--task-id`` when given, so a client retrying the same call (a dropped
connection) finds the same proposal instead of making a second one.
"""

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.server.lowlevel import Server

from signoff.client import AsyncClient, AsyncProposalHandle
from signoff.errors import APIError, ReceiptInvalid, SignoffError, WaitTimeout
from signoff.integrations import refusal
from signoff.types import DecisionState


@dataclass(frozen=True)
class ProxyConfig:
    gates: dict[str, str]  # upstream tool name -> Signoff action type
    command: list[str] | None = None
    url: str | None = None
    wait_seconds: float = 3600.0
    task_id: str | None = None

    def target(self) -> Any:
        if self.url:
            return self.url
        if not self.command:
            raise SignoffError("Give the upstream MCP server: a command after '--', or --url.")
        return StdioServerParameters(command=self.command[0], args=self.command[1:])


def parse_gates(items: list[str]) -> dict[str, str]:
    gates = {}
    for item in items:
        tool, sep, action_type = item.partition("=")
        if not sep or not tool or not action_type:
            raise SignoffError(f"--gate takes TOOL=ACTION_TYPE; got {item!r}.")
        gates[tool] = action_type
    return gates


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _not_run(state: DecisionState) -> str:
    d = state.decision
    if state.status == "approved" and state.mode == "draft":
        return "Submitted as a draft: a reviewer decides and an executor applies it; not run here."
    if state.status == "rejected" and d is not None:
        who = d.reviewer_name or d.reviewer_sub or d.decided_by
        comment = f" Comment: {d.comment}" if d.comment else ""
        return f"Not run: rejected by {who}. Reasons: {', '.join(d.reason_codes) or 'none given'}.{comment}"
    return f"Not run: the proposal is {state.status}."


_ASK = "keep_waiting"
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {_ASK: {"type": "boolean", "title": "Keep waiting for a reviewer?"}},
    "required": [_ASK],
}


def _question(proposal_id: str) -> str:
    return f"Signoff proposal {proposal_id} has no decision yet. Keep waiting (no cancels it)?"


def _keep(answer: Any) -> bool | None:
    """True: keep waiting; False: cancel; None: no answer (the client could not ask)."""
    if not isinstance(answer, types.ElicitResult) or answer.action == "cancel":
        return None
    return answer.action == "accept" and (answer.content or {}).get(_ASK) is True


class Proxy:
    def __init__(self, config: ProxyConfig, client: AsyncClient) -> None:
        self.config = config
        self.client = client

    async def _wait(self, proposal_id: str) -> DecisionState | None:
        try:
            return await self.client.wait(proposal_id, self.config.wait_seconds)
        except WaitTimeout:
            return None

    async def _ask(self, session: Any, proposal_id: str) -> bool | None | types.InputRequiredResult:
        """Ask the person at the client whether to keep waiting: by a server request on older
        protocol versions, by an input-required result on 2026-07-28 and later; None when the
        client has no elicitation."""
        caps = getattr(session, "client_capabilities", None)
        if session is None or caps is None or caps.elicitation is None:
            return None
        if getattr(session, "can_send_request", False):
            try:
                return _keep(await session.elicit_form(_question(proposal_id), _SCHEMA))
            except Exception:  # the client could not answer: neither wait forever nor cancel
                return None
        params = types.ElicitRequestFormParams(message=_question(proposal_id), requested_schema=_SCHEMA)
        return types.InputRequiredResult(
            input_requests={_ASK: types.ElicitRequest(params=params)},
            request_state=json.dumps({"proposal_id": proposal_id}),
        )

    async def call(
        self,
        upstream: Client,
        name: str,
        arguments: dict[str, Any],
        session: Any = None,
        request_state: str | None = None,
        input_responses: dict[str, Any] | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        action_type = self.config.gates.get(name)
        if action_type is None:
            return await upstream.call_tool(name, arguments)
        try:
            handle = await self._proposal(action_type, name, arguments, request_state)
            if request_state is not None:  # the client answered our question and retried
                keep = _keep((input_responses or {}).get(_ASK))
                if keep is False:
                    await self.client.cancel(handle.id)
            while (state := await self._wait(handle.id)) is None:
                keep = await self._ask(session, handle.id)
                if isinstance(keep, types.InputRequiredResult):
                    return keep
                if keep is False:
                    await self.client.cancel(handle.id)
                elif keep is None:
                    return _error(f"Not run: no decision on proposal {handle.id} yet; ask again later.")
            return await self._run(upstream, name, handle, state)
        except APIError as exc:
            return _error(json.dumps({"error": exc.error, "status_code": exc.status_code}))

    async def _proposal(
        self, action_type: str, name: str, arguments: dict[str, Any], request_state: str | None
    ) -> AsyncProposalHandle:
        if request_state is not None:
            # Opaque to the client but not trusted: the proposal must be this very call's.
            try:
                proposal_id = str(json.loads(request_state)["proposal_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SignoffError("Unusable request_state.") from exc
            handle = await self.client.handle(proposal_id)
            if handle.proposal.action_type != action_type or handle.proposal.payload != arguments:
                raise SignoffError("request_state names another call's proposal.")
            return handle
        key = None
        if self.config.task_id:
            call = json.dumps([self.config.task_id, name, arguments], sort_keys=True).encode()
            key = f"mcp-{hashlib.sha256(call).hexdigest()[:40]}"
        return await self.client.propose(
            action_type,
            arguments,
            summary=f"{name} via MCP"[:500],
            evidence=[{"kind": "tool_call", "title": name, "content": {"tool": name, "args": arguments}}],
            idempotency_key=key,
        )

    async def _run(
        self, upstream: Client, name: str, handle: AsyncProposalHandle, state: DecisionState
    ) -> types.CallToolResult:
        if not (state.status == "approved" and state.mode != "draft"):
            return _error(_not_run(state))
        current = await self.client.get(handle.id)
        if current.execution is not None:  # a retried call that already ran: never twice
            return _error(f"Already run for Signoff proposal {handle.id}: {current.execution.status}.")
        try:
            jti = (await self.client.check_receipt(state))["jti"]  # before the tool runs, or never
        except ReceiptInvalid as exc:
            return _error(refusal(exc))
        try:
            result = await upstream.call_tool(name, state.payload)
        except Exception as exc:
            await handle.report("failed", error=f"{type(exc).__name__}: {exc}", receipt_jti=jti)
            return _error(f"The tool failed: {exc}")
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if result.is_error:
            error = text[:10_000] or "the tool reported an error"
            await handle.report("failed", error=error, receipt_jti=jti)
        else:
            await handle.report("succeeded", {"text": text[:10_000]}, receipt_jti=jti)
        if state.edited:
            note = f"A reviewer edited the arguments; the tool ran with {json.dumps(state.payload)}."
            result.content.insert(0, types.TextContent(type="text", text=note))
        return result


def build_proxy(config: ProxyConfig, client: AsyncClient | None = None) -> Server[Any]:
    proxy_client = client

    @asynccontextmanager
    async def lifespan(_server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        api = proxy_client or AsyncClient()
        async with Client(config.target()) as upstream:
            yield {"upstream": upstream, "proxy": Proxy(config, api)}

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        upstream: Client = ctx.lifespan_context["upstream"]
        return await upstream.list_tools(cursor=params.cursor if params else None)

    async def call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        state = ctx.lifespan_context
        try:
            return await state["proxy"].call(
                state["upstream"],
                params.name,
                dict(params.arguments or {}),
                ctx.session,
                params.request_state,
                params.input_responses,
            )
        except SignoffError as exc:
            return _error(str(exc))

    return Server(
        "signoff-proxy",
        instructions="Tools of another MCP server; some need a human's approval in Signoff before they run.",
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(config: ProxyConfig) -> None:
    from mcp.server.stdio import stdio_server

    server = build_proxy(config)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
