"""Policies: the current Cedar text, its versions, replacing it, and dry runs."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.common import ERRORS
from backend.api.deps import AdminDep, CurrentReviewer, ReadSessionDep, SessionDep
from backend.controls.policy import versions as policies
from backend.core.responses import JsonResponse
from models.common import Page
from models.policies import PolicyPublicVersion, PolicyTest, PolicyUpdate, PolicyVersionSummary

router = APIRouter(prefix="/v1/policies", tags=["policies"])


@router.get("", response_model=PolicyPublicVersion, responses=ERRORS)
def get_current(session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    """The current version (reviewers may read it to see why a proposal is where it is)."""
    return JsonResponse(policies.current(session))


@router.put("", response_model=PolicyPublicVersion, responses=ERRORS)
def put_policies(body: PolicyUpdate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Replace the policy set: Cedar checks the text first; a valid one becomes the next version."""
    view = policies.replace(session, body.text, body.comment, admin.actor)
    session.commit()
    return JsonResponse(view)


@router.get("/versions", response_model=Page[PolicyVersionSummary], responses=ERRORS)
def list_versions(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    limit: Annotated[int, Query(ge=1, le=policies.MAX_LIMIT)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> JsonResponse:
    return JsonResponse(policies.list_versions(session, limit, cursor))


@router.get("/versions/{version}", response_model=PolicyPublicVersion, responses=ERRORS)
def get_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1)], session: ReadSessionDep, _user: CurrentReviewer
) -> JsonResponse:
    return JsonResponse(policies.get_version(session, version))


@router.post("/test", responses=ERRORS)
def test_policies(body: PolicyTest, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    """Dry-run a sample proposal (and reviewer) against draft text or the current version."""
    result: dict[str, Any] = policies.dry_run(session, body)
    return JsonResponse(result)
