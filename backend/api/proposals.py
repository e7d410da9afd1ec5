"""The agents' side: place proposals, wait for decisions, report executions."""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from backend.api.common import ERRORS, ProposalId
from backend.api.deps import (
    ActiveAgent,
    AgentPrincipal,
    CurrentCaller,
    PlacingAgent,
    ReportingAgent,
    WaitingKey,
)
from backend.catalog import pii
from backend.core.responses import JsonResponse
from backend.core.settings import get_settings
from backend.observability import tracing
from backend.proposals import idempotency, outcomes, reading, timeline, waiting
from backend.proposals.placer import Placement, placer
from models.proposals import (
    DecisionState,
    ExecutionPublic,
    ExecutionReport,
    ProposalCreate,
    ProposalPublic,
    Timeline,
)

router = APIRouter(prefix="/v1/proposals", tags=["proposals"])


@router.post("", status_code=201, response_model=ProposalPublic, responses=ERRORS)
async def create_proposal(
    body: ProposalCreate,
    request: Request,
    principal: PlacingAgent,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JsonResponse:
    """Place a proposed action with its evidence. Retries with the same Idempotency-Key are safe."""
    key = idempotency.check_key_format(idempotency_key)
    request_hash = idempotency.body_hash(await request.body())
    item = Placement(
        principal.agent_id, body, request_hash, key, principal.key_id, tracing.current_traceparent()
    )
    placed = await placer.place(item)
    headers = {"Idempotent-Replayed": "true"} if placed.replayed else {}
    return JsonResponse(placed.body, status_code=placed.status, headers=headers)


@router.get("/{proposal_id}", response_model=ProposalPublic, responses=ERRORS)
def get_proposal(proposal_id: ProposalId, caller: CurrentCaller) -> JsonResponse:
    """The proposal with its decisions, execution and quorum progress. Agents see only
    their own (in clear); people see ``x-pii`` fields masked unless they may unmask."""
    if isinstance(caller, AgentPrincipal):
        return JsonResponse(reading.get_view(proposal_id, agent_id=caller.agent.id))
    return JsonResponse(reading.get_view(proposal_id, unmask=pii.may_unmask(caller.groups)))


@router.get("/{proposal_id}/timeline", response_model=Timeline, responses=ERRORS)
def get_timeline(proposal_id: ProposalId, caller: CurrentCaller) -> JsonResponse:
    """Every event of one proposal, in order, with actor, time, data and the trace id."""
    if isinstance(caller, AgentPrincipal):
        return JsonResponse(timeline.get_timeline(proposal_id, agent_id=caller.agent.id))
    return JsonResponse(timeline.get_timeline(proposal_id, unmask=pii.may_unmask(caller.groups)))


@router.get("/{proposal_id}/decision", response_model=DecisionState, responses=ERRORS)
async def wait_for_decision(
    proposal_id: ProposalId,
    key: WaitingKey,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds to wait for a decision")] = 0,
) -> JsonResponse:
    """Long-poll: answers as soon as the proposal leaves `pending`, or after `wait` seconds.
    No database connection is held while it waits."""
    wait = min(wait, get_settings().max_wait_seconds)
    read = partial(reading.read_decision_state, key=key)
    state = await waiting.wait_for_decision(key.agent_id, proposal_id, wait, read)
    return JsonResponse(state)


@router.post("/{proposal_id}/execution", status_code=201, response_model=ExecutionPublic, responses=ERRORS)
async def report_execution(
    proposal_id: ProposalId, body: ExecutionReport, key: ReportingAgent
) -> JsonResponse:
    """Report the outcome, once. The same report again is a replay; a different one is 409."""
    content, replayed = await outcomes.report_execution_async(proposal_id, key, body)
    if replayed:
        return JsonResponse(content, status_code=200, headers={"Idempotent-Replayed": "true"})
    return JsonResponse(content, status_code=201)


@router.post("/{proposal_id}/cancel", response_model=ProposalPublic, responses=ERRORS)
def cancel_proposal(proposal_id: ProposalId, principal: ActiveAgent) -> JsonResponse:
    return JsonResponse(outcomes.cancel(proposal_id, principal.agent.id))
