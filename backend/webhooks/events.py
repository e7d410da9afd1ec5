"""Webhook events: the deliveries owed for the audit events a transaction wrote.

This is the ``webhooks`` step of ``backend/on_commit.py``: it runs inside the transaction,
after the ``audit`` step, so an event and its deliveries commit together or not at all (an
outbox); the worker (``backend/webhooks/worker.py``) sends them later, so a slow receiver
never slows the API. Each named webhook event (``models.webhooks.EVENT_TYPES``) carries the
audit event's data and, for a proposal, the proposal as it stands; a draft-mode proposal
that a human approved also becomes a call to its action type's executor.
"""

import threading
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import exists, select
from sqlalchemy.orm import Session as OrmSession

from backend.audit.chain import WrittenEvent, written
from backend.catalog import pii
from backend.core import commit
from models.action_types import ActionType
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Proposal, Status
from models.receipts import Receipt
from models.webhooks import EVENT_TYPES, EXECUTE_EVENT, WebhookDelivery, WebhookEndpoint

_QUEUED = "signoff_webhooks_queued"
_NONE_LIVE = "signoff_webhooks_none_live"
# For a caller that has just read whether any endpoint is live (see ``placement``).
ANY_LIVE = exists().where(WebhookEndpoint.deleted_at.is_(None))  # type: ignore[union-attr]
_WEBHOOK_ACTIONS = frozenset(AuditAction(t) for t in EVENT_TYPES)

# Set after a commit that queued deliveries, so this process's worker sends them at once.
wakeup = threading.Event()


def none_live(session: OrmSession) -> None:
    """The caller read a moment ago that no endpoint is live: this transaction's events need
    no lookup. An endpoint created meanwhile receives events from the next transaction on."""
    session.info[_NONE_LIVE] = True


def queued(session: OrmSession) -> None:
    """This transaction queued a delivery: wake the worker once it commits."""
    session.info[_QUEUED] = True


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
    queued(session)


def _event_data(event: WrittenEvent, proposal: dict[str, Any] | None) -> dict[str, Any]:
    """The body of a named webhook event: who, what, the event's own data, the proposal."""
    data: dict[str, Any] = {"audit_event_id": event.id, "actor": event.actor, "subject": event.subject}
    if event.subject_kind in ("proposal", "agent"):
        data[f"{event.subject_kind}_id"] = event.subject_id
    data.update(event.data)
    if proposal is not None:
        data["proposal"] = proposal
    return data


def _queue_deliveries(session: OrmSession) -> None:
    if session.info.get(_NONE_LIVE):
        return
    relevant = [e for e in written(session) if e.action in _WEBHOOK_ACTIONS]
    if not relevant:
        return
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.event_types).where(
            WebhookEndpoint.deleted_at.is_(None)  # type: ignore[union-attr]
        )
    ).all()
    if not endpoints:
        return
    schemas: dict[str, dict[str, Any] | None] = {}
    for event in relevant:
        proposal_id = event.subject_id if event.subject_kind == "proposal" else None
        proposal = _proposal_view(session, proposal_id) if proposal_id else None
        data = _event_data(event, proposal)
        if proposal is not None:
            # Receivers have no roles: x-pii values never leave in an event (backend/catalog/pii.py).
            # The executor call below is the exception: it must carry what was approved.
            data = pii.masked_event_data(data, _schema(session, schemas, proposal["action_type"]))
        body = _message(event.action.value, event.at, data)
        for endpoint_id, _url, types in endpoints:
            if event.action in types:
                _queue(session, endpoint_id, event.action.value, body, proposal_id)
        if event.action == AuditAction.PROPOSAL_DECIDED and proposal is not None:
            _queue_executor(session, endpoints, proposal, event)


def _schema(
    session: OrmSession, cache: dict[str, dict[str, Any] | None], action_type: str
) -> dict[str, Any] | None:
    if action_type not in cache:
        cache[action_type] = session.execute(
            select(ActionType.payload_schema).where(ActionType.name == action_type)  # type: ignore[arg-type]
        ).scalar()
    return cache[action_type]


def _queue_executor(
    session: OrmSession, endpoints: Any, proposal: dict[str, Any], event: WrittenEvent
) -> None:
    """A draft-mode proposal a human approved goes to its action type's executor webhook."""
    if proposal["mode"] != "draft" or proposal["status"] != Status.approved.value:
        return
    url = session.execute(
        select(ActionType.executor_webhook).where(ActionType.name == proposal["action_type"])  # type: ignore[arg-type]
    ).scalar()
    if not url:
        return
    data = event.data
    payload = data.get("edited_payload") or proposal["payload"]
    receipt = session.execute(
        select(Receipt.token).where(Receipt.proposal_id == proposal["id"]).order_by(Receipt.issued_at.desc())  # type: ignore[arg-type,attr-defined]
    ).scalar()
    body = _message(
        EXECUTE_EVENT,
        event.at,
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
            # Check it before acting (signoff/receipts.py): it proves this exact payload was approved.
            "receipt": receipt,
        },
    )
    for endpoint_id, endpoint_url, types in endpoints:
        if EXECUTE_EVENT in types and endpoint_url == url:
            _queue(session, endpoint_id, EXECUTE_EVENT, body, proposal["id"])


def _wake_worker(session: OrmSession) -> None:
    session.info.pop(_NONE_LIVE, None)
    if session.info.pop(_QUEUED, False):
        wakeup.set()


def _forget(session: OrmSession) -> None:
    session.info.pop(_QUEUED, None)
    session.info.pop(_NONE_LIVE, None)


COMMIT_STEP = commit.Step(
    "webhooks", before_commit=_queue_deliveries, after_commit=_wake_worker, after_rollback=_forget
)
