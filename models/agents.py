"""Agents (non-human identities), their API keys and their grants (with the dial)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field as PydField
from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import JSONType, StrictModel, UTCDateTime, new_id, utcnow


class Dial(StrEnum):
    """An agent's autonomy ceiling for one action type, lowest first."""

    observe = "observe"
    draft = "draft"
    approve = "approve"
    execute = "execute"

    @property
    def rank(self) -> int:
        return _DIAL_RANK[self]


# Declaration order is the order of autonomy; computed once (the placement path asks per proposal).
_DIAL_RANK = {dial: rank for rank, dial in enumerate(Dial)}


class AgentBase(SQLModel):
    name: str = Field(max_length=100, index=True, unique=True)
    owner: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)


class Agent(AgentBase, table=True):
    __tablename__ = "agents"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    suspended: bool = False
    # Set by a tripped breaker: the agent's dials are capped at `draft` until an admin resets it.
    breaker_tripped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breaker_reason: str | None = None
    # The actor who created the agent (``user:<sub>``): separation of duties keeps them
    # from approving its proposals.
    created_by: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Grant(SQLModel, table=True):
    """An action type an agent may propose, and the dial it runs at for it."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("agent_id", "action_type"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=26)
    action_type: str = Field(foreign_key="action_types.name", max_length=100)
    dial: str = Field(default=Dial.approve.value, max_length=20)
    # The actor who granted the action type (separation of duties, as ``created_by``).
    granted_by: str | None = Field(default=None, max_length=300)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=26)
    agent_id: str = Field(foreign_key="agents.id", index=True, max_length=26)
    # SHA-256 of the whole key: keys carry 256 random bits, so a slow hash adds nothing.
    key_hash: str = Field(unique=True, index=True, max_length=64)
    prefix: str = Field(max_length=16)
    name: str = Field(default="", max_length=100)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- wire shapes -----------------------------------------------------------------


class AgentCreate(StrictModel):
    name: str = PydField(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    owner: str = PydField(default="", max_length=200)
    description: str = PydField(default="", max_length=2000)
    grants: list[str] = PydField(default_factory=list, max_length=100)
    dials: dict[str, Dial] = PydField(default_factory=dict)


class GrantPublic(SQLModel):
    action_type: str
    dial: Dial


class AgentPublic(AgentBase):
    id: str
    suspended: bool
    breaker_tripped_at: datetime | None
    breaker_reason: str | None
    created_at: datetime
    grants: list[GrantPublic] = []


class ApiKeyCreate(StrictModel):
    name: str = PydField(default="", max_length=100)
    expires_in_days: int | None = PydField(default=None, ge=1, le=3650)
    scopes: list[str] = PydField(default_factory=list, max_length=20)


class ApiKeyPublic(SQLModel):
    """A key as listed: never the secret, never its hash."""

    id: str
    agent_id: str
    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """The only response that carries the key itself."""

    key: str


class DialUpdate(StrictModel):
    mode: Dial
    reason: str = PydField(default="", max_length=1000)


def agent_public(agent: Agent, grants: list[Grant]) -> dict[str, Any]:
    data = AgentPublic.model_validate(agent, from_attributes=True).model_dump(mode="json")
    data["grants"] = [{"action_type": g.action_type, "dial": g.dial} for g in grants]
    return data
