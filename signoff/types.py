"""Wire shapes the SDK reads and writes.

They mirror ``models.proposals`` (a test keeps the field names in step) but are plain
pydantic, so an agent process needs httpx and pydantic only, not the backend's
SQLAlchemy/SQLModel stack. Responses ignore unknown fields: the server may add some.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EvidenceItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["message", "record", "tool_call", "document", "note"]
    title: str = ""
    content: str | dict[str, Any] | list[Any] = ""
    uri: str | None = None
    sha256: str | None = None


class ProposalContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt_version: str | None = None
    tool_schema_version: str | None = None
    trace_id: str | None = None
    run_id: str | None = None
    tokens: int | None = None
    tool_calls: int | None = None
    cost_usd: float | None = None


class PolicyPublic(_Wire):
    version: int | None = None
    outcome: str = ""
    policy_ids: list[str] = Field(default_factory=list)


class DecisionPublic(_Wire):
    id: str
    proposal_id: str
    verdict: Literal["approve", "reject"]
    decided_by: str
    reviewer_sub: str | None = None
    reviewer_email: str | None = None
    reviewer_name: str | None = None
    reviewer_groups: list[str] = Field(default_factory=list)
    reason_codes: list[str] = Field(default_factory=list)
    comment: str = ""
    edited_payload: dict[str, Any] | None = None
    policy_version: int | None = None
    policy_ids: list[str] = Field(default_factory=list)
    created_at: datetime


class ExecutionPublic(_Wire):
    status: str
    result: Any = None
    error: str | None = None
    reported_by: str
    created_at: datetime


class ProposalPublic(_Wire):
    id: str
    agent_id: str
    agent_name: str | None = None
    action_type: str
    summary: str = ""
    payload: dict[str, Any]
    status: str
    mode: str
    flags: list[str] = Field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    claim: dict[str, Any] | None = None
    action_type_version: int = 1
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    dial: str = ""
    policy: PolicyPublic = Field(default_factory=PolicyPublic)
    updated_at: datetime | None = None
    decided_at: datetime | None = None
    decisions: list[DecisionPublic] = Field(default_factory=list)
    execution: ExecutionPublic | None = None
    # Quorum progress (the approvals so far: reviewer and time), escalation and assignment.
    approvals: list[dict[str, Any]] = Field(default_factory=list)
    approvals_required: int = 1
    escalated: bool = False
    assigned_to: str | None = None
    payload_sha256: str = ""


class DecisionState(_Wire):
    """What ``wait()`` returns: the status, and the payload to execute (the edited one if edited)."""

    proposal_id: str
    status: str
    mode: str
    decided: bool
    decision: DecisionPublic | None = None
    payload: dict[str, Any]
    expires_at: datetime
    # The signed approval receipt (compact JWS); see signoff/receipts.py.
    receipt: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def edited(self) -> bool:
        return bool(self.decision and self.decision.edited_payload is not None)
