"""Policy versions (Cedar text), budgets, and the usage counters budgets are checked against."""

from datetime import datetime
from typing import Any

from pydantic import Field as PydField
from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import (
    INT64_MAX,
    MAX_COST_USD,
    MAX_TOKENS,
    MAX_TOOL_CALLS,
    JSONType,
    StrictModel,
    UTCDateTime,
    utcnow,
)


class PolicyVersion(SQLModel, table=True):
    """One version of the whole Cedar policy set. The highest version is current."""

    __tablename__ = "policy_versions"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    text: str
    comment: str = Field(default="", max_length=1000)
    policy_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=300)


class Budget(SQLModel, table=True):
    """Limits for one agent; ``action_type`` "" means the agent as a whole."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("agent_id", "action_type"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=26)
    action_type: str = Field(default="", max_length=100)
    allowed_action_types: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    max_tool_calls_per_task: int | None = Field(default=None, sa_type=BigInteger)
    max_tokens_per_task: int | None = Field(default=None, sa_type=BigInteger)
    max_proposals_per_day: int | None = Field(default=None, sa_type=BigInteger)
    max_cost_usd_per_day: float | None = None
    # A hard budget refuses the proposal that would cross it (403 budget_exceeded) instead
    # of accepting it flagged and tripping the breaker.
    hard: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentUsage(SQLModel, table=True):
    """What an agent used on one UTC day, per action type (budgets sum the rows they cover)."""

    __tablename__ = "agent_usage"

    agent_id: str = Field(primary_key=True, max_length=26)
    day: str = Field(primary_key=True, max_length=10)
    action_type: str = Field(primary_key=True, max_length=100)
    # 64-bit: a busy agent passes 2^31 tokens in a day.
    proposals: int = Field(default=0, sa_type=BigInteger)
    cost_usd: float = 0.0
    tokens: int = Field(default=0, sa_type=BigInteger)


class AgentGuard(SQLModel, table=True):
    """The sliding windows the guards read: recent tool-call counts and policy denials.

    One row per agent; locking it (PostgreSQL) serialises an agent's concurrent proposals
    through the budget check, so two requests cannot both slip under a limit.
    """

    __tablename__ = "agent_guards"

    agent_id: str = Field(primary_key=True, max_length=26)
    recent_tool_calls: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    recent_denials: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))


# --- wire shapes -----------------------------------------------------------------


class PolicyUpdate(StrictModel):
    text: str = PydField(max_length=200_000)
    comment: str = PydField(default="", max_length=1000)


class PolicyPublicVersion(SQLModel):
    version: int
    text: str
    created_at: datetime
    created_by: str
    comment: str
    policy_ids: list[str]


class PolicyVersionSummary(SQLModel):
    version: int
    created_at: datetime
    created_by: str
    comment: str


class TestProposal(StrictModel):
    agent: str = PydField(min_length=1, max_length=100)
    action_type: str = PydField(min_length=1, max_length=100)
    payload: dict[str, Any] = PydField(default_factory=dict)
    context: dict[str, Any] = PydField(default_factory=dict)


class TestReviewer(StrictModel):
    groups: list[str] = PydField(default_factory=list, max_length=100)


class PolicyTest(StrictModel):
    text: str | None = PydField(default=None, max_length=200_000)
    proposal: TestProposal
    reviewer: TestReviewer | None = None


class BudgetSpec(StrictModel):
    action_type: str | None = PydField(default=None, max_length=100)
    allowed_action_types: list[str] | None = PydField(default=None, max_length=100)
    max_tool_calls_per_task: int | None = PydField(default=None, ge=0, le=MAX_TOOL_CALLS)
    max_tokens_per_task: int | None = PydField(default=None, ge=0, le=MAX_TOKENS)
    max_proposals_per_day: int | None = PydField(default=None, ge=0, le=INT64_MAX)
    max_cost_usd_per_day: float | None = PydField(default=None, ge=0, le=MAX_COST_USD, allow_inf_nan=False)
    hard: bool = PydField(default=False, description="Refuse proposals that cross it, instead of flagging.")


class BudgetsUpdate(StrictModel):
    budgets: list[BudgetSpec] = PydField(default_factory=list, max_length=100)


class BreakerReset(StrictModel):
    reason: str = PydField(default="", max_length=1000)
