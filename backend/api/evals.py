"""Eval data: annotations, reason codes, the streamed export, scenario suites, runs, gates."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import StreamingResponse

from backend.api.common import ERRORS, ProposalId
from backend.api.deps import AdminDep, CurrentReviewer, ReadSessionDep, SessionDep, SettingsDep
from backend.catalog import action_types, pii, reason_codes
from backend.controls import eval_gate
from backend.core.errors import ApiError
from backend.core.responses import JsonResponse
from backend.evals import annotations, export, suites
from backend.evals import runs as eval_runs
from models.common import Page
from models.evals import (
    AnnotationCreate,
    AnnotationPublic,
    EvalGatePublic,
    EvalGateUpdate,
    ReasonCodeCreate,
    ReasonCodeRetire,
    RunPublic,
    SuitePublic,
    SuiteUpsert,
)
from models.proposals import Verdict

router = APIRouter(tags=["evals"])

Ulid = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]
Name = Annotated[str, Path(max_length=100)]


@router.post(
    "/v1/proposals/{proposal_id}/annotations",
    status_code=201,
    response_model=AnnotationPublic,
    responses=ERRORS,
)
def annotate(
    proposal_id: ProposalId, body: AnnotationCreate, session: SessionDep, user: CurrentReviewer
) -> JsonResponse:
    """Label a decided proposal (labels, severity, note) for eval data."""
    view = annotations.create(session, proposal_id, user, body)
    session.commit()
    return JsonResponse(view, status_code=201)


@router.get(
    "/v1/proposals/{proposal_id}/annotations", response_model=Page[AnnotationPublic], responses=ERRORS
)
def list_annotations(
    proposal_id: ProposalId, session: ReadSessionDep, _user: CurrentReviewer
) -> JsonResponse:
    return JsonResponse(annotations.list_for(session, proposal_id))


@router.patch("/v1/annotations/{annotation_id}", response_model=AnnotationPublic, responses=ERRORS)
def edit_annotation(
    annotation_id: Ulid, body: AnnotationCreate, session: SessionDep, user: CurrentReviewer
) -> JsonResponse:
    """Only the author may edit; the audit trail keeps the before and after."""
    view = annotations.update(session, annotation_id, user, body)
    session.commit()
    return JsonResponse(view)


@router.get("/v1/evals/export", responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}}}})
def export_cases(
    user: CurrentReviewer,
    settings: SettingsDep,
    session: ReadSessionDep,
    format: Literal["jsonl", "csv"] = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    action_type: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    verdict: Verdict | None = None,
    reason_code: Annotated[str | None, Query(max_length=64)] = None,
    mask_pii: bool = True,
) -> StreamingResponse:
    """Decided proposals as eval cases, streamed (JSONL: one case a line; or CSV).

    Payload fields the action type's schema marks ``"x-pii": true`` are masked unless a
    caller with the unmask right (``backend/catalog/pii.py``) asks for ``mask_pii=false``.
    """
    if not mask_pii and not pii.may_unmask(user.groups):
        raise ApiError(
            403, "not_allowed_to_unmask", "Only the unmask role may export PII in clear.", param="mask_pii"
        )
    if action_type and action_types.get(session, action_type) is None:
        raise ApiError(
            422, "unknown_action_type", f"No action type named {action_type!r}.", param="action_type"
        )
    filters = export.ExportFilter(since, until, action_type, agent, verdict, reason_code, mask_pii)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"signoff-cases.{format}"
    return StreamingResponse(
        export.stream(filters, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/v1/action-types/{name}/reason-codes", responses=ERRORS)
def list_reason_codes(
    name: Name, session: ReadSessionDep, _user: CurrentReviewer, include_retired: bool = True
) -> JsonResponse:
    return JsonResponse(reason_codes.list_codes(session, name, include_retired))


@router.post("/v1/action-types/{name}/reason-codes", status_code=201, responses=ERRORS)
def add_reason_code(name: Name, body: ReasonCodeCreate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    view = reason_codes.add(session, name, body, admin.actor)
    session.commit()
    return JsonResponse(view, status_code=201)


@router.delete("/v1/action-types/{name}/reason-codes/{code}", responses=ERRORS)
def retire_reason_code(
    name: Name,
    code: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    admin: AdminDep,
    body: ReasonCodeRetire | None = None,
) -> JsonResponse:
    """Retire a code: no longer offered or accepted, but kept for past decisions."""
    view = reason_codes.set_retired(
        session, name, code, True, admin.actor, (body or ReasonCodeRetire()).reason
    )
    session.commit()
    return JsonResponse(view)


@router.post("/v1/action-types/{name}/reason-codes/{code}/restore", responses=ERRORS)
def restore_reason_code(
    name: Name, code: Annotated[str, Path(max_length=64)], session: SessionDep, admin: AdminDep
) -> JsonResponse:
    view = reason_codes.set_retired(session, name, code, False, admin.actor)
    session.commit()
    return JsonResponse(view)


@router.get("/v1/evals/suites", response_model=Page[SuitePublic], responses=ERRORS)
def list_suites(session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(suites.list_suites(session))


@router.get("/v1/evals/suites/{name}", responses=ERRORS)
def get_suite(name: Name, session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    row = suites.require(session, name)
    return JsonResponse({**suites.public(row), "cases": row.cases})


@router.put("/v1/evals/suites/{name}", response_model=SuitePublic, responses=ERRORS)
def put_suite(name: Name, body: SuiteUpsert, session: SessionDep, admin: AdminDep) -> JsonResponse:
    row = suites.upsert(session, name, body, admin.actor)
    session.commit()
    return JsonResponse(suites.public(row))


@router.get("/v1/evals/runs", response_model=Page[RunPublic], responses=ERRORS)
def list_runs(
    session: ReadSessionDep,
    _user: CurrentReviewer,
    suite: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JsonResponse:
    """Runs, newest first (the Evals page draws the trend over model and prompt_version)."""
    return JsonResponse(eval_runs.list_runs(session, suite, agent, limit))


@router.get("/v1/evals/runs/{run_id}", response_model=RunPublic, responses=ERRORS)
def get_run(run_id: Ulid, session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    """One run with its failing cases."""
    return JsonResponse(eval_runs.get(session, run_id))


@router.get("/v1/action-types/{name}/eval-gate", response_model=EvalGatePublic, responses=ERRORS)
def get_gate(name: Name, session: ReadSessionDep, _user: CurrentReviewer) -> JsonResponse:
    return JsonResponse(eval_gate.get(session, name))


@router.put("/v1/action-types/{name}/eval-gate", response_model=EvalGatePublic, responses=ERRORS)
def put_gate(name: Name, body: EvalGateUpdate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Require a pass rate on a suite before any agent's dial for this type goes to `execute`."""
    view = eval_gate.put(session, name, body, admin.actor)
    session.commit()
    return JsonResponse(view)


@router.delete("/v1/action-types/{name}/eval-gate", status_code=204, responses=ERRORS)
def delete_gate(name: Name, session: SessionDep, admin: AdminDep) -> None:
    eval_gate.delete(session, name, admin.actor)
    session.commit()
