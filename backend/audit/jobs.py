"""A full verification of the audit trail, run in the background.

Walking millions of events takes seconds, too long for one request: ``POST
/v1/audit/verify/jobs`` starts one here (a thread of the API process, its row in
``audit_verify_jobs``), ``GET /v1/audit/verify/jobs/{id}`` reads its result. A job whose
process died stays ``running``; starting another is always allowed.
"""

import threading
from typing import Any

import structlog

from backend.audit import verification
from backend.core.db import read_session, transaction
from backend.core.errors import not_found
from models.audit import AuditVerifyJob, AuditVerifyJobPublic
from models.common import new_id, utcnow

log = structlog.get_logger()


def public(job: AuditVerifyJob) -> dict[str, Any]:
    return AuditVerifyJobPublic.model_validate(job, from_attributes=True).model_dump(mode="json")


def start(actor: str) -> dict[str, Any]:
    with transaction() as session:
        job = AuditVerifyJob(id=new_id(), status="running", requested_by=actor, started_at=utcnow())
        session.add(job)
        session.flush()
        view = public(job)
    threading.Thread(target=run, args=(view["id"],), name="signoff-audit-verify", daemon=True).start()
    return view


def run(job_id: str) -> None:
    status, result = "done", None
    try:
        with read_session() as session:
            result = verification.verify_full(session).model_dump(mode="json")
    except Exception:
        log.exception("audit_verify_job_failed", job_id=job_id)
        status = "failed"
    with transaction() as session:
        job = session.get(AuditVerifyJob, job_id)
        if job is not None:
            job.status, job.result, job.finished_at = status, result, utcnow()
            session.add(job)


def get(job_id: str) -> dict[str, Any]:
    with read_session() as session:
        job = session.get(AuditVerifyJob, job_id)
        if job is None:
            raise not_found("verify job", job_id)
        return public(job)
