"""Action types: what an agent may ask to do, with the JSON Schema of its payload."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field as PydField
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.common import JSONType, StrictModel, UTCDateTime, utcnow


class Risk(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class OnExpiry(StrEnum):
    """What silence means when a proposal's deadline passes."""

    reject = "reject"
    expire = "expire"


class ReasonCode(SQLModel):
    code: str
    label: str
    description: str = ""
    retired: bool = False


class ActionType(SQLModel, table=True):
    __tablename__ = "action_types"

    name: str = Field(primary_key=True, max_length=100)
    version: int = 1
    description: str = ""
    payload_schema: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    risk: str = Field(default=Risk.medium.value, max_length=20)
    approver_role: str | None = Field(default=None, max_length=100)
    approvals_required: int = 1
    default_expiry_seconds: int = 24 * 3600
    reason_codes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    executor_webhook: str | None = None
    # What of an executor's answer the agent may see (JSON Schema); None: nothing.
    result_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    # Who may not approve: the agent's owner, its creator and granter, earlier approvers.
    separation_of_duties: bool = True
    # The payload fields a reviewer may edit; None: any field.
    editable_fields: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    # Money (fields the schema types "number") may only go down in an edit, unless this is set.
    edits_may_raise_money: bool = False
    remind_after_seconds: int | None = None
    escalate_after_seconds: int | None = None
    escalate_to: str | None = Field(default=None, max_length=100)
    on_expiry: str = Field(default=OnExpiry.reject.value, max_length=10)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ActionTypeUpdate(StrictModel):
    description: str = PydField(default="", max_length=2000)
    payload_schema: dict[str, Any]
    risk: Risk = Risk.medium
    approver_role: str | None = PydField(default=None, max_length=100)
    approvals_required: int = PydField(default=1, ge=1, le=5)
    default_expiry_seconds: int = PydField(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    reason_codes: list[ReasonCode] = PydField(default_factory=list, max_length=100)
    executor_webhook: str | None = PydField(default=None, max_length=2000)
    result_schema: dict[str, Any] | None = None
    separation_of_duties: bool = True
    editable_fields: list[str] | None = PydField(default=None, max_length=100)
    edits_may_raise_money: bool = False
    remind_after_seconds: int | None = PydField(default=None, ge=1, le=30 * 24 * 3600)
    escalate_after_seconds: int | None = PydField(default=None, ge=1, le=30 * 24 * 3600)
    escalate_to: str | None = PydField(default=None, min_length=1, max_length=100)
    on_expiry: OnExpiry = OnExpiry.reject


class ActionTypePublic(SQLModel):
    name: str
    version: int
    description: str
    payload_schema: dict[str, Any]
    risk: Risk
    approver_role: str | None
    approvals_required: int
    default_expiry_seconds: int
    reason_codes: list[ReasonCode]
    executor_webhook: str | None
    result_schema: dict[str, Any] | None = None
    separation_of_duties: bool
    editable_fields: list[str] | None
    edits_may_raise_money: bool
    remind_after_seconds: int | None
    escalate_after_seconds: int | None
    escalate_to: str | None
    on_expiry: OnExpiry
    updated_at: datetime
