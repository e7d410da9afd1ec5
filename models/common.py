"""Types shared by every domain: ids, UTC timestamps, JSON columns, pages, errors."""

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from ulid import ULID

T = TypeVar("T")


def new_id() -> str:
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_ulid(value: str) -> bool:
    if len(value) != 26:
        return False
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite keeps no zone, PostgreSQL converts to the session zone; both come back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON everywhere; JSONB on PostgreSQL for payloads that are queried.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Page(BaseModel, Generic[T]):
    """Every list endpoint answers in this shape (keyset pagination)."""

    items: list[T]
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")
