"""Admins register webhook endpoints, read the delivery log and redeliver."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from backend.api.common import ERRORS
from backend.api.deps import AdminDep, ReadSessionDep, SessionDep
from backend.core.responses import JsonResponse
from backend.webhooks import service as webhooks
from models.common import Page
from models.webhooks import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryDetail,
    WebhookDeliveryPublic,
    WebhookPublic,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Ulid = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]


@router.get("", response_model=Page[WebhookPublic], responses=ERRORS)
def list_webhooks(session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    return JsonResponse({"items": webhooks.list_endpoints(session), "next_cursor": None})


@router.post("", status_code=201, response_model=WebhookCreated, responses=ERRORS)
def create_webhook(body: WebhookCreate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Register an endpoint. The signing secret (`whsec_...`) is in this answer only."""
    created = webhooks.create(session, body, admin.actor)
    session.commit()
    return JsonResponse(created, status_code=201)


@router.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryDetail, responses=ERRORS)
def get_delivery(delivery_id: Ulid, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    """One delivery with its body and every attempt, in order."""
    return JsonResponse(webhooks.get_delivery(session, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDeliveryPublic,
    responses=ERRORS,
)
def redeliver(delivery_id: Ulid, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Send the same message again (same webhook-id, so receivers can deduplicate)."""
    view = webhooks.redeliver(session, delivery_id, admin.actor)
    session.commit()
    return JsonResponse(view, status_code=202)


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=ERRORS)
def get_webhook(webhook_id: Ulid, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    return JsonResponse(webhooks.public(webhooks.live(session, webhook_id)))


@router.delete("/{webhook_id}", status_code=204, responses=ERRORS)
def delete_webhook(webhook_id: Ulid, session: SessionDep, admin: AdminDep) -> Response:
    webhooks.delete(session, webhook_id, admin.actor)
    session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryPublic], responses=ERRORS)
def list_deliveries(
    webhook_id: Ulid,
    session: ReadSessionDep,
    _admin: AdminDep,
    cursor: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[str | None, Query(pattern="^(pending|succeeded|failed|cancelled)$")] = None,
) -> JsonResponse:
    """The delivery log, newest first: status, attempts, last status code and latency."""
    return JsonResponse(webhooks.list_deliveries(session, webhook_id, cursor, limit, status))
