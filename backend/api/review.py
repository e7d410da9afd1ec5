"""The reviewers' side: the queue, claims, assignment and decisions (one or many)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.api.common import ERRORS, ProposalId
from backend.api.deps import CurrentReviewer, ReadSessionDep, SettingsDep
from backend.core.responses import JsonResponse
from backend.proposals import bulk, claims, decisions, queue
from models.common import Page
from models.proposals import (
    AssignmentCreate,
    BulkDecisionCreate,
    BulkDecisionResult,
    ClaimPublic,
    DecisionCreate,
    DecisionPublic,
    ProposalSummary,
    Status,
)

router = APIRouter(tags=["review"])


@router.get("/v1/queue", response_model=Page[ProposalSummary], responses=ERRORS)
def list_queue(
    session: ReadSessionDep,
    user: CurrentReviewer,
    status: Status = Status.pending,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=queue.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    assigned: Annotated[
        queue.Assigned | None, Query(description="me: assigned to me; group: to one of my groups")
    ] = None,
    decidable: Annotated[bool, Query(description="only proposals I may decide now")] = False,
) -> JsonResponse:
    """Proposals by status (pending by default), the nearest deadline first."""
    page = queue.list_queue(
        session,
        status,
        action_type,
        agent,
        q,
        limit,
        cursor,
        user=user,
        assigned=assigned,
        decidable=decidable,
    )
    return JsonResponse(page)


@router.post("/v1/proposals/{proposal_id}/claim", response_model=ClaimPublic, responses=ERRORS)
def claim(proposal_id: ProposalId, user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(claims.claim(proposal_id, user))


@router.delete("/v1/proposals/{proposal_id}/claim", status_code=204, responses=ERRORS)
def release(
    proposal_id: ProposalId,
    user: CurrentReviewer,
    settings: SettingsDep,
    force: Annotated[bool, Query(description="admins: break another reviewer's claim")] = False,
) -> None:
    claims.release(proposal_id, user, is_admin=user.has(settings.admin_role), force=force)


@router.post("/v1/proposals/{proposal_id}/assign", responses=ERRORS)
def assign(proposal_id: ProposalId, body: AssignmentCreate, user: CurrentReviewer) -> JsonResponse:
    """Assign to a reviewer (`sub`) or a group (`group:NAME`); see `GET /v1/queue?assigned=me`."""
    return JsonResponse(claims.assign(proposal_id, user, body.to))


@router.post(
    "/v1/proposals/{proposal_id}/decisions", status_code=201, response_model=DecisionPublic, responses=ERRORS
)
async def decide(proposal_id: ProposalId, body: DecisionCreate, user: CurrentReviewer) -> JsonResponse:
    """Approve (optionally with an edited payload) or reject (with reason codes)."""
    decision: dict[str, Any] = await decisions.decide_async(proposal_id, user, body)
    return JsonResponse(decision, status_code=201)


@router.post("/v1/decisions/bulk", response_model=BulkDecisionResult, responses=ERRORS)
def decide_bulk(body: BulkDecisionCreate, user: CurrentReviewer) -> JsonResponse:
    """Approve or reject many proposals with one reason; each is decided as if alone and
    reported with its own HTTP status and decision or error."""
    return JsonResponse(bulk.decide_many(user, body))
