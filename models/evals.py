"""Eval data: annotations on decided proposals, scenario suites, their runs, and eval gates."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field as PydField
from sqlalchemy import BigInteger, Column, Double, Index
from sqlmodel import Field, SQLModel

from models.common import JSONType, StrictModel, UTCDateTime, new_id, utcnow


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Annotation(SQLModel, table=True):
    """A reviewer's later label on a decided proposal; editable by its author only."""

    __tablename__ = "annotations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    proposal_id: str = Field(foreign_key="proposals.id", index=True, max_length=26)
    author_sub: str = Field(max_length=255)
    author_name: str | None = Field(default=None, max_length=255)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    severity: str | None = Field(default=None, max_length=20)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvalSuite(SQLModel, table=True):
    """A named set of cases: an input and the expected verdict (and payload, for approvals)."""

    __tablename__ = "eval_suites"

    name: str = Field(primary_key=True, max_length=100)
    action_type: str = Field(max_length=100)
    description: str = ""
    cases: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_by: str = Field(default="system", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvalRun(SQLModel, table=True):
    """One run of a suite against one agent, scored; the gate reads these."""

    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_agent_suite_created", "agent_id", "suite", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    suite: str = Field(max_length=100, index=True)
    agent_id: str = Field(foreign_key="agents.id", max_length=26)
    action_type: str = Field(max_length=100)
    status: str = Field(default="running", max_length=20)
    model: str | None = Field(default=None, max_length=200)
    prompt_version: str | None = Field(default=None, max_length=200)
    cases: int = 0
    passed: int = 0
    pass_rate: float | None = None
    by_reason: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    failures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_by: str = Field(default="system", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EvalRunProposal(SQLModel, table=True):
    """Which proposal an agent placed for which case of a run (set when it is placed)."""

    __tablename__ = "eval_run_proposals"

    proposal_id: str = Field(foreign_key="proposals.id", primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="eval_runs.id", index=True, max_length=26)
    case_id: str = Field(max_length=200)


class EvalGate(SQLModel, table=True):
    """Before an agent's dial for this action type may go to `execute`, pass this suite."""

    __tablename__ = "eval_gates"

    action_type: str = Field(foreign_key="action_types.name", primary_key=True, max_length=100)
    suite: str = Field(max_length=100)
    min_pass_rate: float
    window_days: int = 30
    updated_by: str = Field(default="system", max_length=300)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- wire shapes -----------------------------------------------------------------


class AnnotationCreate(StrictModel):
    labels: list[str] = PydField(default_factory=list, max_length=50)
    severity: Severity | None = None
    note: str = PydField(default="", max_length=10_000)


class AnnotationPublic(SQLModel):
    id: str
    proposal_id: str
    author_sub: str
    author_name: str | None
    labels: list[str]
    severity: Severity | None
    note: str
    created_at: datetime
    updated_at: datetime


class ReasonCodeCreate(StrictModel):
    code: str = PydField(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = PydField(min_length=1, max_length=200)
    description: str = PydField(default="", max_length=2000)


class ReasonCodeRetire(StrictModel):
    reason: str = PydField(default="", max_length=1000)


class SuiteCase(StrictModel):
    """One line of a suite file."""

    id: str = PydField(min_length=1, max_length=200)
    action_type: str | None = PydField(default=None, max_length=100)
    input: dict[str, Any] = PydField(default_factory=dict)
    expected: "Expectation"
    source: dict[str, Any] | None = None


class Expectation(StrictModel):
    verdict: str = PydField(pattern=r"^(approve|reject)$")
    reason_codes: list[str] = PydField(default_factory=list, max_length=20)
    payload: dict[str, Any] | None = None
    rejected_payload: dict[str, Any] | None = None


SuiteCase.model_rebuild()


class SuiteUpsert(StrictModel):
    action_type: str = PydField(min_length=1, max_length=100)
    description: str = PydField(default="", max_length=2000)
    cases: list[SuiteCase] = PydField(min_length=1, max_length=10_000)


class SuitePublic(SQLModel):
    suite: str
    action_type: str
    description: str
    cases: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_run: dict[str, Any] | None = None


class RunPublic(SQLModel):
    suite: str
    run_id: str
    agent_id: str
    agent_name: str | None = None
    action_type: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    model: str | None
    prompt_version: str | None
    cases: int
    passed: int
    pass_rate: float | None
    by_reason: dict[str, Any]
    failures: list[dict[str, Any]] = []


class EvalGateUpdate(StrictModel):
    suite: str = PydField(min_length=1, max_length=100)
    min_pass_rate: float = PydField(ge=0, le=1)
    window_days: int = PydField(default=30, ge=1, le=3650)


class EvalGatePublic(SQLModel):
    action_type: str
    suite: str
    min_pass_rate: float
    window_days: int
    updated_by: str
    updated_at: datetime


# --- rollups behind /v1/metrics (kept by backend/evals/rollup.py) ------------------------


class MetricCount(SQLModel, table=True):
    """Per UTC day (of the proposal's creation), agent and action type: the counts and sums
    the metrics summary needs, so it reads a row per group and day instead of every proposal.
    Proposals placed by eval runs are not counted."""

    __tablename__ = "metric_counts"

    # Key in this order: a summary sums each group's days in key order, with no sort.
    agent_id: str = Field(primary_key=True, max_length=26)
    action_type: str = Field(primary_key=True, max_length=100)
    day: str = Field(primary_key=True, max_length=10)
    proposals: int = Field(default=0, sa_type=BigInteger)
    approved: int = Field(default=0, sa_type=BigInteger)
    rejected: int = Field(default=0, sa_type=BigInteger)
    escalated: int = Field(default=0, sa_type=BigInteger)
    violations: int = Field(default=0, sa_type=BigInteger)
    tool_calls_sum: int = Field(default=0, sa_type=BigInteger)
    tool_calls_n: int = Field(default=0, sa_type=BigInteger)
    tokens_sum: int = Field(default=0, sa_type=BigInteger)
    tokens_n: int = Field(default=0, sa_type=BigInteger)


class MetricReason(SQLModel, table=True):
    """Reason codes of rejections, per day of the proposal's creation, agent and action type."""

    __tablename__ = "metric_reasons"

    agent_id: str = Field(primary_key=True, max_length=26)
    action_type: str = Field(primary_key=True, max_length=100)
    code: str = Field(primary_key=True, max_length=200)
    day: str = Field(primary_key=True, max_length=10)
    count: int = Field(default=0, sa_type=BigInteger)


class DecisionTime(SQLModel, table=True):
    """One row per human decision (not on eval proposals): seconds from placing to it, indexed
    by group and value, so a percentile is an index walk, not a join over all decisions."""

    __tablename__ = "decision_times"
    __table_args__ = (
        Index("ix_decision_times_group_seconds", "agent_id", "action_type", "seconds", "created_at"),
        Index("ix_decision_times_created", "created_at"),
    )

    decision_id: str = Field(primary_key=True, max_length=26)
    agent_id: str = Field(max_length=26)
    action_type: str = Field(max_length=100)
    # The proposal's creation (the metrics' time filter and day bucket), not the decision's.
    created_at: datetime = Field(sa_type=UTCDateTime)
    day: str = Field(max_length=10)
    seconds: float = Field(sa_type=Double)
