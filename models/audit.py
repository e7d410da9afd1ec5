"""The append-only, hash-chained audit trail."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    # Chain order. Assigned from audit_head under its row lock, so it is gapless.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    id: str = Field(unique=True, max_length=26)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=300, index=True)
    action: str = Field(max_length=100, index=True)
    subject: str = Field(default="", max_length=300, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the chain's tip. Updating it serialises appends across replicas."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)


class AuditEventPublic(SQLModel):
    seq: int
    id: str
    at: datetime
    actor: str
    action: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerification(SQLModel):
    ok: bool
    events: int
    first_bad: str | None = None
    reason: str | None = None
