"""System-wide switches (the global kill switch)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class SystemFlag(SQLModel, table=True):
    __tablename__ = "system_flags"

    name: str = Field(primary_key=True, max_length=100)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(default="system", max_length=300)


class RateLimitWindow(SQLModel, table=True):
    """Requests per agent API key in one window (backend/core/ratelimit.py); unlogged on
    PostgreSQL."""

    __tablename__ = "rate_limit_windows"

    key_hash: str = Field(primary_key=True, max_length=64)
    window_start: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    hits: int = Field(default=0, sa_type=BigInteger)


class KillSwitchUpdate(SQLModel):
    engaged: bool
    reason: str = ""


class KillSwitchState(SQLModel):
    engaged: bool
    updated_at: datetime | None
    updated_by: str | None
