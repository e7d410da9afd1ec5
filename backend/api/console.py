"""Read endpoints for the review console: queue counts and an agent's track record."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.common import ERRORS
from backend.api.deps import CurrentReviewer, ReadSessionDep
from backend.catalog import pii
from backend.core.responses import JsonResponse
from backend.proposals import console

router = APIRouter(tags=["review"])


@router.get("/v1/queue/counts", responses=ERRORS)
def queue_counts(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
) -> JsonResponse:
    """Pending totals: all, expiring within the hour, claimed, and per action type."""
    return JsonResponse(console.queue_counts(session, action_type))


@router.get("/v1/agents/{agent_ref}/history", responses=ERRORS)
def agent_history(
    agent_ref: Annotated[str, Path(max_length=100)], session: ReadSessionDep, user: CurrentReviewer
) -> JsonResponse:
    """Counts by status and the latest decided proposals of one agent (id or name), for reviewers."""
    data: dict[str, Any] = console.agent_history(session, agent_ref, pii.may_unmask(user.groups))
    return JsonResponse(data)
