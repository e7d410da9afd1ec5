"""Proposals, the decisions that end them and the execution the agent reports."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field as PydField
from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.agents import Dial
from models.common import (
    MAX_COST_USD,
    MAX_TOKENS,
    MAX_TOOL_CALLS,
    JSONType,
    StrictModel,
    UTCDateTime,
    new_id,
    utcnow,
)


class Status(StrEnum):
    pending = "pending"
    observed = "observed"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    executed = "executed"
    failed = "failed"


FINAL_STATUSES = frozenset(
    {Status.observed, Status.rejected, Status.expired, Status.cancelled, Status.executed, Status.failed}
)


class Verdict(StrEnum):
    approve = "approve"
    reject = "reject"


class EvidenceKind(StrEnum):
    message = "message"
    record = "record"
    tool_call = "tool_call"
    document = "document"
    note = "note"


class Proposal(SQLModel, table=True):
    __tablename__ = "proposals"
    __table_args__ = (
        # The queue: pending first by deadline, then id (the keyset cursor).
        Index("ix_proposals_status_expires_id", "status", "expires_at", "id"),
        Index("ix_proposals_agent_created", "agent_id", "created_at"),
        # The metrics' partial first day (the rest is read from the rollups).
        Index("ix_proposals_created", "created_at"),
        # The queue's "claimed" badge: live claims among pending ones, from the index alone.
        Index("ix_proposals_status_claim_expires", "status", "claim_expires_at", "expires_at"),
        # The same badges for one action type.
        Index("ix_proposals_status_type_expires", "status", "action_type", "expires_at", "claim_expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    agent_id: str = Field(foreign_key="agents.id", max_length=26)
    action_type: str = Field(foreign_key="action_types.name", max_length=100, index=True)
    action_type_version: int = 1
    summary: str = Field(default="", max_length=500)
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    status: str = Field(max_length=20)
    mode: str = Field(max_length=20)
    dial: str = Field(max_length=20)
    policy_version: int | None = None
    policy_outcome: str = Field(default="", max_length=40)
    policy_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=255)
    claimed_by_name: str | None = Field(default=None, max_length=255)
    claim_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Quorum: approvals that count so far (an edit restarts the count), and the number
    # needed when policy raised it above the action type's (None: the action type's).
    approval_count: int = 0
    approvals_required: int | None = None
    # Assignment: a reviewer's sub or "group:NAME".
    assigned_to: str | None = Field(default=None, max_length=300, index=True)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # W3C traceparent of the request that placed it (tracing on): later work joins that trace.
    traceparent: str | None = Field(default=None, max_length=55)


class Decision(SQLModel, table=True):
    __tablename__ = "decisions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    proposal_id: str = Field(foreign_key="proposals.id", index=True, max_length=26)
    verdict: str = Field(max_length=10)
    # "user" for a reviewer, "policy" when the gate decided without a human.
    decided_by: str = Field(default="user", max_length=10)
    reviewer_sub: str | None = Field(default=None, max_length=255)
    reviewer_email: str | None = Field(default=None, max_length=320)
    reviewer_name: str | None = Field(default=None, max_length=255)
    reviewer_groups: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    reason_codes: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    comment: str = ""
    edited_payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    policy_version: int | None = None
    policy_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Execution(SQLModel, table=True):
    """At most one per proposal: the primary key is the proposal id."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("proposal_id"),
        Index("uq_executions_receipt_jti", "receipt_jti", unique=True),
    )

    proposal_id: str = Field(foreign_key="proposals.id", primary_key=True, max_length=26)
    status: str = Field(max_length=20)
    result: Any = Field(default=None, sa_column=Column(JSONType))
    error: str | None = None
    request_hash: str = Field(max_length=64)
    reported_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The approval receipt this execution used up: unique, so a receipt is good for one.
    receipt_jti: str | None = Field(default=None, max_length=26)
    # An executor webhook's whole answer, for the record; the agent sees only `result`,
    # which holds what the action type's result schema declares.
    response: Any = Field(default=None, sa_column=Column(JSONType))


# --- wire shapes -----------------------------------------------------------------


class EvidenceItem(StrictModel):
    kind: EvidenceKind
    title: str = PydField(default="", max_length=500)
    content: str | dict[str, Any] | list[Any] = ""
    uri: str | None = PydField(default=None, max_length=2000)
    sha256: str | None = PydField(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class ProposalContext(StrictModel):
    model: str | None = PydField(default=None, max_length=200)
    prompt_version: str | None = PydField(default=None, max_length=200)
    tool_schema_version: str | None = PydField(default=None, max_length=200)
    trace_id: str | None = PydField(default=None, max_length=200)
    run_id: str | None = PydField(default=None, max_length=200)
    tokens: int | None = PydField(default=None, ge=0, le=MAX_TOKENS)
    tool_calls: int | None = PydField(default=None, ge=0, le=MAX_TOOL_CALLS)
    cost_usd: float | None = PydField(default=None, ge=0, le=MAX_COST_USD, allow_inf_nan=False)


class ProposalCreate(StrictModel):
    action_type: str = PydField(min_length=1, max_length=100)
    payload: dict[str, Any]
    summary: str = PydField(default="", max_length=500)
    evidence: list[EvidenceItem] = PydField(default_factory=list, max_length=200)
    context: ProposalContext = PydField(default_factory=ProposalContext)
    expires_in_seconds: int | None = PydField(default=None, ge=10, le=30 * 24 * 3600)


class PolicyPublic(SQLModel):
    version: int | None
    outcome: str
    policy_ids: list[str]


class ClaimPublic(SQLModel):
    by: str
    name: str | None
    expires_at: datetime


class DecisionCreate(StrictModel):
    verdict: Verdict
    reason_codes: list[str] = PydField(default_factory=list, max_length=20)
    comment: str = PydField(default="", max_length=10_000)
    edited_payload: dict[str, Any] | None = None
    # The payload_sha256 of the proposal view the reviewer decided on: 409 stale_view if
    # the payload changed since (another approver's edit).
    seen_payload_sha256: str | None = PydField(default=None, pattern=r"^[0-9a-f]{64}$")


class AssignmentCreate(StrictModel):
    to: str = PydField(min_length=1, max_length=300, pattern=r"^(group:)?[^\s]+$")


class ApprovalPublic(SQLModel):
    reviewer: str
    at: datetime


class DecisionPublic(SQLModel):
    id: str
    proposal_id: str
    verdict: Verdict
    decided_by: str
    reviewer_sub: str | None
    reviewer_email: str | None
    reviewer_name: str | None
    reviewer_groups: list[str]
    reason_codes: list[str]
    comment: str
    edited_payload: dict[str, Any] | None
    policy_version: int | None
    policy_ids: list[str]
    created_at: datetime


class BulkDecisionCreate(StrictModel):
    proposal_ids: list[Annotated[str, PydField(min_length=1, max_length=40)]] = PydField(
        min_length=1, max_length=500
    )
    verdict: Verdict
    reason_codes: list[str] = PydField(default_factory=list, max_length=20)
    comment: str = PydField(default="", max_length=10_000)


class BulkDecisionItem(SQLModel):
    id: str
    status: int
    decision: DecisionPublic | None = None
    error: dict[str, Any] | None = None


class BulkDecisionResult(SQLModel):
    items: list[BulkDecisionItem]


class ExecutionReport(StrictModel):
    status: Literal["succeeded", "failed"]
    result: Any = None
    error: str | None = PydField(default=None, max_length=10_000)
    # The `jti` of the approval receipt the agent acted on (GET .../decision hands it out).
    receipt_jti: str | None = PydField(default=None, min_length=1, max_length=26)


class ExecutionPublic(SQLModel):
    status: str
    result: Any
    error: str | None
    reported_by: str
    created_at: datetime


class ProposalSummary(SQLModel):
    """A queue row: enough to triage without the evidence."""

    id: str
    agent_id: str
    agent_name: str | None = None
    action_type: str
    summary: str
    payload: dict[str, Any]
    status: Status
    mode: Dial
    flags: list[str]
    created_at: datetime
    expires_at: datetime
    claim: ClaimPublic | None = None
    approvals: int = 0
    approvals_required: int = 1
    escalated: bool = False
    assigned_to: str | None = None
    # Hex SHA-256 of the effective payload (the latest approver edit, else the original) as
    # canonical JSON (backend/core/canonical.py): what a decision's seen_payload_sha256 names.
    payload_sha256: str = ""


class ProposalPublic(ProposalSummary):
    action_type_version: int
    evidence: list[dict[str, Any]]
    context: dict[str, Any]
    dial: Dial
    policy: PolicyPublic
    updated_at: datetime
    decided_at: datetime | None
    decisions: list[DecisionPublic] = []
    execution: ExecutionPublic | None = None
    # Here the approvals themselves (who and when), not only their count as in the queue.
    approvals: list[ApprovalPublic] = []  # type: ignore[assignment]


class DecisionState(SQLModel):
    """What a long-polling agent gets: the state, and the payload to execute if approved."""

    proposal_id: str
    status: Status
    mode: Dial
    decided: bool
    decision: DecisionPublic | None
    payload: dict[str, Any]
    expires_at: datetime
    # The signed approval receipt (compact JWS), once approved.
    receipt: str | None = None


class TimelineItem(SQLModel):
    """One step of a proposal's story (``GET /v1/proposals/{id}/timeline``)."""

    id: str
    kind: str  # audit | decision | webhook
    event: str  # the audit action, decision.recorded or webhook.delivery
    at: datetime
    actor: str
    data: dict[str, Any]
    trace_id: str | None


class Timeline(SQLModel):
    items: list[TimelineItem]
    trace_id: str | None
