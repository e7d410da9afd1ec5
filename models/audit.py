"""The append-only, hash-chained audit trail."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime


class AuditAction(StrEnum):
    """Every action the audit trail records, by name. Services write these, webhooks carry
    some of them (``models.webhooks.EVENT_TYPES``) and readers filter on them, so the names
    are part of the API: add new ones, never rename."""

    PROPOSAL_CREATED = "proposal.created"
    PROPOSAL_REFUSED = "proposal.refused"
    POLICY_EVALUATED = "policy.evaluated"
    PROPOSAL_CLAIMED = "proposal.claimed"
    PROPOSAL_RELEASED = "proposal.released"
    PROPOSAL_DECIDED = "proposal.decided"
    DECISION_REFUSED = "decision.refused"
    # An approval short of the quorum: the proposal stays pending.
    DECISION_RECORDED = "decision.recorded"
    PROPOSAL_REMINDED = "proposal.reminded"
    PROPOSAL_ESCALATED = "proposal.escalated"
    PROPOSAL_ASSIGNED = "proposal.assigned"
    PROPOSAL_EXPIRED = "proposal.expired"
    PROPOSAL_CANCELLED = "proposal.cancelled"
    PROPOSAL_EXECUTED = "proposal.executed"
    AGENT_CREATED = "agent.created"
    AGENT_SUSPENDED = "agent.suspended"
    AGENT_RESUMED = "agent.resumed"
    GRANT_ADDED = "grant.added"
    DIAL_CHANGED = "dial.changed"
    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"
    BUDGETS_UPDATED = "budgets.updated"
    BREAKER_TRIPPED = "breaker.tripped"
    BREAKER_RESET = "breaker.reset"
    KILL_SWITCH_ENGAGED = "kill_switch.engaged"
    KILL_SWITCH_RELEASED = "kill_switch.released"
    ACTION_TYPE_CREATED = "action_type.created"
    ACTION_TYPE_UPDATED = "action_type.updated"
    REASON_CODE_ADDED = "reason_code.added"
    REASON_CODE_RETIRED = "reason_code.retired"
    REASON_CODE_RESTORED = "reason_code.restored"
    POLICY_UPDATED = "policy.updated"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    ANNOTATION_CREATED = "annotation.created"
    ANNOTATION_UPDATED = "annotation.updated"
    EVAL_SUITE_SAVED = "eval_suite.saved"
    EVAL_RUN_STARTED = "eval_run.started"
    EVAL_RUN_COMPLETED = "eval_run.completed"
    EVAL_RUN_ABORTED = "eval_run.aborted"
    EVAL_GATE_SET = "eval_gate.set"
    EVAL_GATE_REMOVED = "eval_gate.removed"


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
    # "kid:hex": HMAC-SHA256 over `hash` with the audit key (not in the database); None for
    # events written before the trail was keyed.
    mac: str | None = Field(default=None, max_length=100)


class AuditHead(SQLModel, table=True):
    """One row: the chain's tip. Updating it serialises appends across replicas."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)
    # The keyed MAC over (seq, hash): the head cannot be moved back without the audit key.
    mac: str = Field(default="", max_length=100)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of the chain's head at a moment (``backend/audit/checkpoints.py``)."""

    __tablename__ = "audit_checkpoints"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    # Compact JWS (EdDSA) over {"seq", "hash", "at"}, by the signing key named in its header.
    token: str = Field(max_length=1000)


class AuditVerifyJob(SQLModel, table=True):
    """A full verification run in the background, and its result once done."""

    __tablename__ = "audit_verify_jobs"

    id: str = Field(primary_key=True, max_length=26)
    status: str = Field(max_length=20)  # running | done | failed
    requested_by: str = Field(max_length=300)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


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


class CheckpointRef(SQLModel):
    seq: int
    at: datetime


class AuditVerification(SQLModel):
    ok: bool
    # Events in the chain (its head), and how many this run walked (from the checkpoint).
    events: int
    checked: int = 0
    full: bool = True
    first_bad: str | None = None
    reason: str | None = None
    checkpoint: CheckpointRef | None = None
    unkeyed: int = 0


class AuditVerifyJobPublic(SQLModel):
    id: str
    status: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    result: AuditVerification | None
