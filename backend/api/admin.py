"""Action types, the global kill switch and the audit trail."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.common import ERRORS, Ulid
from backend.api.deps import AdminDep, AuditorDep, CurrentReviewer, ReadSessionDep, SessionDep
from backend.audit import jobs as verify_jobs
from backend.audit import verification
from backend.audit.query import list_events
from backend.catalog import action_types, pii
from backend.controls import kill_switch
from backend.core.responses import JsonResponse
from models.action_types import ActionTypePublic, ActionTypeUpdate
from models.audit import AuditEventPublic, AuditVerification, AuditVerifyJobPublic
from models.common import Page
from models.system import KillSwitchState, KillSwitchUpdate

router = APIRouter(tags=["admin"])


def _action_type(row: object) -> dict:
    return ActionTypePublic.model_validate(row, from_attributes=True).model_dump(mode="json")


@router.get("/v1/action-types", response_model=Page[ActionTypePublic], responses=ERRORS)
def list_action_types(session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(
        {"items": [_action_type(r) for r in action_types.list_all(session)], "next_cursor": None}
    )


@router.get("/v1/action-types/{name}", response_model=ActionTypePublic, responses=ERRORS)
def get_action_type(name: str, session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(_action_type(action_types.require(session, name)))


@router.put("/v1/action-types/{name}", response_model=ActionTypePublic, responses=ERRORS)
def put_action_type(name: str, body: ActionTypeUpdate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    row = action_types.put(session, name, body, admin.actor)
    session.commit()
    return JsonResponse(_action_type(row))


@router.get("/v1/kill-switch", response_model=KillSwitchState, responses=ERRORS)
def get_kill_switch(session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(kill_switch.state(session).model_dump(mode="json"))


@router.post("/v1/kill-switch", response_model=KillSwitchState, responses=ERRORS)
def set_kill_switch(body: KillSwitchUpdate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Stop every agent at once (or let them go again)."""
    state = kill_switch.set_engaged(session, body.engaged, admin.actor, body.reason)
    session.commit()
    return JsonResponse(state.model_dump(mode="json"))


@router.get("/v1/audit", response_model=Page[AuditEventPublic], responses=ERRORS)
def list_audit(
    session: ReadSessionDep,
    auditor: AuditorDep,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    subject: Annotated[str | None, Query(max_length=300)] = None,
    actor: Annotated[str | None, Query(max_length=300)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> JsonResponse:
    """Events, newest first; filter by subject, actor or action. Payloads' ``x-pii`` fields
    are masked for readers without the unmask right."""
    page = list_events(session, cursor, limit, subject, actor, action)
    if not pii.may_unmask(auditor.groups):
        page["items"] = pii.masked_audit_items(session, page["items"])
    return JsonResponse(page)


@router.get("/v1/audit/verify", response_model=AuditVerification, responses=ERRORS)
def verify_audit(session: ReadSessionDep, _auditor: AuditorDep) -> JsonResponse:
    """From the latest signed checkpoint on (incremental); a full walk is a job (below)."""
    return JsonResponse(verification.verify_incremental(session).model_dump(mode="json"))


@router.post("/v1/audit/verify/jobs", status_code=202, response_model=AuditVerifyJobPublic, responses=ERRORS)
def start_verify_job(auditor: AuditorDep) -> JsonResponse:
    """Verify everything (chain, checkpoints, rows against events) in the background."""
    return JsonResponse(verify_jobs.start(auditor.actor), status_code=202)


@router.get("/v1/audit/verify/jobs/{job_id}", response_model=AuditVerifyJobPublic, responses=ERRORS)
def get_verify_job(job_id: Ulid, _auditor: AuditorDep) -> JsonResponse:
    return JsonResponse(verify_jobs.get(job_id))
