"""Webhook endpoints, the deliveries owed to them and every attempt at one.

A delivery is one message (its id is the Standard Webhooks ``webhook-id``, the same on
every retry); attempts are the log of tries, in order, with status code and latency.
"""

from datetime import datetime
from typing import Any

from pydantic import Field as PydField
from pydantic import field_validator
from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.audit import AuditAction
from models.common import JSONType, StrictModel, UTCDateTime, new_id, utcnow

# Audit actions that become webhook events, plus the draft-mode executor call.
EVENT_TYPES: tuple[str, ...] = tuple(
    a.value
    for a in (
        AuditAction.PROPOSAL_CREATED,
        AuditAction.PROPOSAL_DECIDED,
        AuditAction.PROPOSAL_EXPIRED,
        AuditAction.PROPOSAL_REMINDED,
        AuditAction.PROPOSAL_ESCALATED,
        AuditAction.PROPOSAL_CANCELLED,
        AuditAction.PROPOSAL_EXECUTED,
        AuditAction.BREAKER_TRIPPED,
        AuditAction.AGENT_SUSPENDED,
    )
)
EXECUTE_EVENT = "proposal.execute"
ALL_EVENT_TYPES = (*EVENT_TYPES, EXECUTE_EVENT)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    description: str = Field(default="", max_length=500)
    # The signing secret, sealed with the encryption key (backend/webhooks/secrets.py): the
    # database alone cannot read it. Never returned after creation, never logged.
    secret: str = Field(max_length=500)
    created_by: str = Field(default="", max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's scan: due pending deliveries.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", max_length=26)
    event_type: str = Field(max_length=50)
    # The exact JSON body sent (kept as text so every retry signs the same bytes).
    body: str
    proposal_id: str | None = Field(default=None, max_length=26, index=True)
    status: str = Field(default="pending", max_length=20)  # pending | succeeded | failed | cancelled
    attempts: int = 0
    last_status_code: int | None = None
    last_latency_ms: float | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", index=True, max_length=26)
    number: int
    status_code: int | None = None
    latency_ms: float
    error: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- wire shapes -----------------------------------------------------------------


class WebhookCreate(StrictModel):
    url: str = PydField(min_length=8, max_length=2000, pattern=r"^https?://")
    event_types: list[str] = PydField(min_length=1, max_length=len(ALL_EVENT_TYPES))
    description: str = PydField(default="", max_length=500)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ALL_EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {list(ALL_EVENT_TYPES)}")
        return sorted(set(value))


class WebhookPublic(SQLModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The only answer that carries the signing secret."""

    secret: str


class WebhookAttemptPublic(SQLModel):
    number: int
    status_code: int | None
    latency_ms: float
    error: str | None
    at: datetime


class WebhookDeliveryPublic(SQLModel):
    id: str
    endpoint_id: str
    event_type: str
    proposal_id: str | None
    status: str
    attempts: int
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryDetail(WebhookDeliveryPublic):
    body: dict[str, Any]
    attempt_log: list[WebhookAttemptPublic] = []
