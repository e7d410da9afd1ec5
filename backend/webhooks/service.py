"""Webhooks: endpoints, Standard Webhooks signatures, and deliveries queued with audit events.

Deliveries are rows written by an audit subscriber in the transaction that wrote the
event, so an event and its deliveries commit together (an outbox); the worker in
``webhook_worker`` sends them later, so a slow receiver never slows the API.
"""

import base64
import hashlib
import hmac
import secrets
import threading
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import event, exists, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from backend.audit import chain as audit
from backend.core.errors import ApiError, not_found
from models.action_types import ActionType
from models.common import utcnow
from models.proposals import Proposal, Status
from models.webhooks import (
    EVENT_TYPES,
    EXECUTE_EVENT,
    WebhookAttempt,
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookPublic,
)

SECRET_PREFIX = "whsec_"
_QUEUED = "signoff_webhooks_queued"
_NONE_LIVE = "signoff_webhooks_none_live"
# For a caller that has just read whether any endpoint is live (see ``placement``).
ANY_LIVE = exists().where(WebhookEndpoint.deleted_at.is_(None))  # type: ignore[union-attr]


def none_live(session: OrmSession) -> None:
    """The caller read a moment ago that no endpoint is live: this transaction's events need
    no lookup. An endpoint created meanwhile receives events from the next transaction on."""
    session.info[_NONE_LIVE] = True


# Set after a commit that queued deliveries, so this process's worker sends them at once.
wakeup = threading.Event()


# --- signing (https://www.standardwebhooks.com) ------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, msg_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    timestamp = int((now or utcnow()).timestamp())
    return {
        "content-type": "application/json",
        "user-agent": "Signoff-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


# --- endpoints ---------------------------------------------------------------------


def public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return WebhookPublic.model_validate(endpoint, from_attributes=True).model_dump(mode="json")


def create(session: Session, body: WebhookCreate, actor: str) -> dict[str, Any]:
    endpoint = WebhookEndpoint(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=new_secret(),
        created_by=actor,
    )
    session.add(endpoint)
    session.flush()
    # The secret is deliberately not in the audit data.
    audit.record(
        session,
        actor,
        "webhook.created",
        f"webhook:{endpoint.id}",
        {"url": body.url, "event_types": body.event_types},
    )
    return {**public(endpoint), "secret": endpoint.secret}


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
    audit.record(session, actor, "webhook.deleted", f"webhook:{endpoint_id}", {"url": endpoint.url})


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
    audit.record(session, actor, "webhook.redelivered", f"webhook:{d.endpoint_id}", {"delivery_id": d.id})
    session.info[_QUEUED] = True
    return delivery_public(d)


# --- queueing: an audit subscriber -------------------------------------------------


def _proposal_view(session: OrmSession, proposal_id: str) -> dict[str, Any] | None:
    row = session.execute(
        select(
            Proposal.id,
            Proposal.agent_id,
            Proposal.action_type,
            Proposal.status,
            Proposal.mode,
            Proposal.summary,
            Proposal.payload,
            Proposal.expires_at,
        ).where(Proposal.id == proposal_id)  # type: ignore[arg-type]
    ).first()
    return dict(row._mapping) if row else None


def _message(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    return orjson.dumps({"type": event_type, "timestamp": at, "data": data}, option=orjson.OPT_UTC_Z).decode()


def _queue(
    session: OrmSession, endpoint_id: str, event_type: str, body: str, proposal_id: str | None
) -> None:
    now = utcnow()
    session.execute(
        WebhookDelivery.__table__.insert(),  # type: ignore[attr-defined]
        {
            "id": WebhookDelivery().id,
            "endpoint_id": endpoint_id,
            "event_type": event_type,
            "body": body,
            "proposal_id": proposal_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    session.info[_QUEUED] = True


def _on_audit(session: OrmSession, rows: list[dict[str, Any]]) -> None:
    relevant = [r for r in rows if r["action"] in EVENT_TYPES]
    if not relevant or session.info.get(_NONE_LIVE):
        return
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.event_types).where(
            WebhookEndpoint.deleted_at.is_(None)  # type: ignore[union-attr]
        )
    ).all()
    if not endpoints:
        return
    for row in relevant:
        kind, _, ident = row["subject"].partition(":")
        proposal_id = ident if kind == "proposal" else None
        data: dict[str, Any] = {"audit_event_id": row["id"], "actor": row["actor"], "subject": row["subject"]}
        if kind in ("proposal", "agent"):
            data[f"{kind}_id"] = ident
        data.update(row["data"])
        proposal = _proposal_view(session, proposal_id) if proposal_id else None
        if proposal is not None:
            data["proposal"] = proposal
        body = _message(row["action"], row["at"], data)
        for endpoint_id, _url, types in endpoints:
            if row["action"] in types:
                _queue(session, endpoint_id, row["action"], body, proposal_id)
        if row["action"] == "proposal.decided" and proposal is not None:
            _queue_executor(session, endpoints, proposal, row)


def _queue_executor(
    session: OrmSession, endpoints: Any, proposal: dict[str, Any], row: dict[str, Any]
) -> None:
    """A draft-mode proposal a human approved goes to its action type's executor webhook."""
    if proposal["mode"] != "draft" or proposal["status"] != Status.approved.value:
        return
    url = session.execute(
        select(ActionType.executor_webhook).where(ActionType.name == proposal["action_type"])  # type: ignore[arg-type]
    ).scalar()
    if not url:
        return
    data = row["data"]
    payload = data.get("edited_payload") or proposal["payload"]
    body = _message(
        EXECUTE_EVENT,
        row["at"],
        {
            "proposal_id": proposal["id"],
            "agent_id": proposal["agent_id"],
            "action_type": proposal["action_type"],
            "summary": proposal["summary"],
            "payload": payload,
            "decision": {
                "verdict": data.get("verdict"),
                "reviewer": data.get("reviewer"),
                "comment": data.get("comment", ""),
                "edited": bool(data.get("edited")),
            },
        },
    )
    for endpoint_id, endpoint_url, types in endpoints:
        if EXECUTE_EVENT in types and endpoint_url == url:
            _queue(session, endpoint_id, EXECUTE_EVENT, body, proposal["id"])


@event.listens_for(OrmSession, "after_commit")
def _wake_worker(session: OrmSession) -> None:
    session.info.pop(_NONE_LIVE, None)
    if session.info.pop(_QUEUED, False):
        wakeup.set()


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_QUEUED, None)
    session.info.pop(_NONE_LIVE, None)


if _on_audit not in audit.SUBSCRIBERS:
    audit.SUBSCRIBERS.append(_on_audit)
