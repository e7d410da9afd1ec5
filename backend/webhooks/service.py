"""Webhook endpoints and their delivery log: what admins create, read and redeliver.

Deliveries are queued by ``backend/webhooks/events.py`` in the transaction that wrote the
audit event (an outbox) and sent by ``backend/webhooks/worker.py``.
"""

from typing import Any

import orjson
from sqlalchemy import select, update
from sqlmodel import Session

from backend.audit import chain as audit
from backend.core.errors import ApiError, not_found
from backend.webhooks import events, secrets, targets
from backend.webhooks.settings import WebhookSettings
from backend.webhooks.signing import new_secret
from backend.webhooks.targets import UnsafeTarget
from models.audit import AuditAction
from models.common import utcnow
from models.webhooks import (
    WebhookAttempt,
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookPublic,
)

# --- endpoints ---------------------------------------------------------------------


def public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return WebhookPublic.model_validate(endpoint, from_attributes=True).model_dump(mode="json")


def check_url(url: str, allowlist: str, param: str = "url") -> None:
    """Refuse a URL that reaches into the internal network (``backend/webhooks/targets.py``)."""
    try:
        targets.check(url, targets.parse_allowlist(allowlist))
    except UnsafeTarget as exc:
        raise ApiError(422, "unsafe_url", str(exc), param=param) from None


def create(session: Session, body: WebhookCreate, actor: str) -> dict[str, Any]:
    check_url(body.url, WebhookSettings().allowlist)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=secrets.seal(secret),
        created_by=actor,
    )
    session.add(endpoint)
    session.flush()
    # The secret is deliberately not in the audit data.
    audit.record(
        session,
        actor,
        AuditAction.WEBHOOK_CREATED,
        f"webhook:{endpoint.id}",
        {"url": body.url, "event_types": body.event_types},
    )
    return {**public(endpoint), "secret": secret}


def live(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise not_found("webhook", endpoint_id)
    return endpoint


def list_endpoints(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None)).order_by(WebhookEndpoint.id)  # type: ignore[union-attr,arg-type]
    ).all()
    return [public(r) for r in rows]


def delete(session: Session, endpoint_id: str, actor: str) -> None:
    """Soft delete: the delivery log stays readable; what was still owed is cancelled."""
    endpoint = live(session, endpoint_id)
    endpoint.deleted_at = utcnow()
    session.add(endpoint)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")  # type: ignore[arg-type]
        .values(status="cancelled", updated_at=utcnow())
    )
    audit.record(session, actor, AuditAction.WEBHOOK_DELETED, f"webhook:{endpoint_id}", {"url": endpoint.url})


# --- the delivery log --------------------------------------------------------------


def delivery_public(d: WebhookDelivery) -> dict[str, Any]:
    view = WebhookDeliveryPublic.model_validate(d, from_attributes=True)
    if d.status != "pending":
        view.next_attempt_at = None
    return view.model_dump(mode="json")


def list_deliveries(
    session: Session, endpoint_id: str, cursor: str | None, limit: int, status: str | None
) -> dict[str, Any]:
    """Newest first, keyset on the delivery id (a ULID)."""
    if session.get(WebhookEndpoint, endpoint_id) is None:
        raise not_found("webhook", endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)  # type: ignore[arg-type]
    if cursor:
        query = query.where(WebhookDelivery.id < cursor)  # type: ignore[arg-type]
    if status:
        query = query.where(WebhookDelivery.status == status)  # type: ignore[arg-type]
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)).all())  # type: ignore[attr-defined]
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [delivery_public(d) for d in rows], "next_cursor": rows[-1].id if more else None}


def get_delivery(session: Session, delivery_id: str) -> dict[str, Any]:
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise not_found("delivery", delivery_id)
    attempts = session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id).order_by(WebhookAttempt.number)  # type: ignore[arg-type]
    ).all()
    return {
        **delivery_public(d),
        "body": orjson.loads(d.body),
        "attempt_log": [
            WebhookAttemptPublic.model_validate(a, from_attributes=True).model_dump(mode="json")
            for a in attempts
        ],
    }


def redeliver(session: Session, delivery_id: str, actor: str) -> dict[str, Any]:
    """Send the same message (same webhook-id) again, now, whatever became of it."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise not_found("delivery", delivery_id)
    endpoint = session.get(WebhookEndpoint, d.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise ApiError(409, "webhook_deleted", "The endpoint of this delivery was deleted.")
    now = utcnow()
    d.status, d.next_attempt_at, d.updated_at, d.created_at = "pending", now, now, now
    session.add(d)
    audit.record(
        session, actor, AuditAction.WEBHOOK_REDELIVERED, f"webhook:{d.endpoint_id}", {"delivery_id": d.id}
    )
    events.queued(session)
    return delivery_public(d)
