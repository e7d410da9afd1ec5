"""Stored responses for Stripe-style idempotency keys, scoped per agent."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    agent_id: str = Field(primary_key=True, max_length=26)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    response_body: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
