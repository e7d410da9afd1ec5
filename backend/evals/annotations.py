"""Annotations: reviewers' later labels on decided proposals, the raw material of eval data.

Only the author may edit an annotation: it is their judgement, and the audit trail says
who said what. Pending proposals cannot be annotated (there is no outcome to label yet).
"""

from typing import Any

from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.core.errors import ApiError, not_found
from backend.proposals.lookup import load
from models.audit import AuditAction
from models.common import utcnow
from models.evals import Annotation, AnnotationCreate, AnnotationPublic
from models.proposals import Status


def public(row: Annotation) -> dict[str, Any]:
    return AnnotationPublic.model_validate(row, from_attributes=True).model_dump(mode="json")


def _labels(body: AnnotationCreate) -> list[str]:
    labels = [label.strip() for label in body.labels]
    if any(not label or len(label) > 100 for label in labels):
        raise ApiError(422, "invalid_label", "Labels are 1 to 100 characters.", param="labels")
    return list(dict.fromkeys(labels))


def create(session: Session, proposal_id: str, user: User, body: AnnotationCreate) -> dict[str, Any]:
    proposal = load(session, proposal_id)
    if proposal.status == Status.pending:
        raise ApiError(
            409, "not_decided", "Annotate a proposal once it is decided.", extra={"status": proposal.status}
        )
    row = Annotation(
        proposal_id=proposal.id,
        author_sub=user.sub,
        author_name=user.name or user.email,
        labels=_labels(body),
        severity=body.severity.value if body.severity else None,
        note=body.note,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        user.actor,
        AuditAction.ANNOTATION_CREATED,
        f"proposal:{proposal.id}",
        {"annotation_id": row.id, "labels": row.labels, "severity": row.severity, "note": row.note},
    )
    return public(row)


def update(session: Session, annotation_id: str, user: User, body: AnnotationCreate) -> dict[str, Any]:
    row = session.get(Annotation, annotation_id)
    if row is None:
        raise not_found("annotation", annotation_id)
    if row.author_sub != user.sub:
        raise ApiError(403, "not_author", "Only the author of an annotation can edit it.")
    before = {"labels": row.labels, "severity": row.severity, "note": row.note}
    row.labels = _labels(body)
    row.severity = body.severity.value if body.severity else None
    row.note = body.note
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit.record(
        session,
        user.actor,
        AuditAction.ANNOTATION_UPDATED,
        f"proposal:{row.proposal_id}",
        {
            "annotation_id": row.id,
            "before": before,
            "after": {"labels": row.labels, "severity": row.severity, "note": row.note},
        },
    )
    return public(row)


def list_for(session: Session, proposal_id: str) -> dict[str, Any]:
    load(session, proposal_id)
    rows = session.exec(
        select(Annotation)
        .where(Annotation.proposal_id == proposal_id)
        .order_by(Annotation.created_at, Annotation.id)  # type: ignore[arg-type]
    ).all()
    return {"items": [public(r) for r in rows], "next_cursor": None}
