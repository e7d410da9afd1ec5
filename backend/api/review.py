"""The reviewers' side: the queue, claims and decisions."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.api.common import ERRORS, ProposalId
from backend.api.deps import CurrentReviewer, ReadSessionDep, SettingsDep
from backend.core.responses import JsonResponse
from backend.proposals import claims, decisions, queue
from models.common import Page
from models.proposals import ClaimPublic, DecisionCreate, DecisionPublic, ProposalSummary, Status

router = APIRouter(tags=["review"])


@router.get("/v1/queue", response_model=Page[ProposalSummary], responses=ERRORS)
def list_queue(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    status: Status = Status.pending,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=queue.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JsonResponse:
    """Proposals by status (pending by default), the nearest deadline first."""
    page = queue.list_queue(session, status, action_type, agent, q, limit, cursor)
    return JsonResponse(page)


@router.post("/v1/proposals/{proposal_id}/claim", response_model=ClaimPublic, responses=ERRORS)
def claim(proposal_id: ProposalId, user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(claims.claim(proposal_id, user))


@router.delete("/v1/proposals/{proposal_id}/claim", status_code=204, responses=ERRORS)
def release(proposal_id: ProposalId, user: CurrentReviewer, settings: SettingsDep) -> None:
    claims.release(proposal_id, user, is_admin=user.has(settings.admin_role))


@router.post(
    "/v1/proposals/{proposal_id}/decisions", status_code=201, response_model=DecisionPublic, responses=ERRORS
)
def decide(proposal_id: ProposalId, body: DecisionCreate, user: CurrentReviewer) -> JsonResponse:
    """Approve (optionally with an edited payload) or reject (with reason codes)."""
    decision: dict[str, Any] = decisions.decide(proposal_id, user, body)
    return JsonResponse(decision, status_code=201)
