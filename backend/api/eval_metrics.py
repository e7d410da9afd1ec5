"""Metrics per agent and action type (approval, rejection by reason, escalation, timing)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from backend.api.common import ERRORS
from backend.api.deps import CurrentReviewer, ReadSessionDep
from backend.core.responses import JsonResponse
from backend.evals import metrics as eval_metrics

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])


@router.get("/summary", responses=ERRORS)
def summary(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    since: datetime | None = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
) -> JsonResponse:
    return JsonResponse(eval_metrics.summary(session, since, agent, action_type))


@router.get("/timeseries", responses=ERRORS)
def timeseries(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    since: datetime | None = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
    bucket: Literal["day"] = "day",
) -> JsonResponse:
    """One row per day, agent and action type."""
    return JsonResponse(eval_metrics.timeseries(session, since, agent, action_type))
