"""Types shared by every domain: ids, UTC timestamps, JSON columns, pages, errors."""

import math
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, model_validator
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


# Bounds on what a request body may hold, anywhere in it: values the database, the JSON
# encoder or the policy engine cannot take would otherwise fail later, in a shared batch.
MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Per-proposal counters: far beyond any real task, small enough that a day's sum fits 64 bits.
MAX_TOKENS = 10**12
MAX_TOOL_CALLS = 10**6
MAX_COST_USD = 10**9
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_CHECKING: ContextVar[bool] = ContextVar("signoff_checking_body", default=False)


class UnsafeInput(Exception):
    """A value no part of the system can store or encode. Not a ``ValueError``, so that it
    passes through pydantic with its ``param`` to the API's error handler (422)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def check_json_safe(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse what would fail to store or encode: nesting deeper than :data:`MAX_DEPTH`,
    integers outside 64 bits, NaN and infinities, NUL characters and lone surrogates."""
    if isinstance(value, str):
        bad = _BAD_TEXT.search(value)
        if bad is not None:
            what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate (not UTF-8)"
            raise UnsafeInput(path, f"{path or 'body'}: text may not contain {what}.")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise UnsafeInput(path, f"{path or 'body'}: integers must fit in 64 bits.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeInput(path, f"{path or 'body'}: numbers must be finite (no NaN or Infinity).")
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise UnsafeInput(path, f"{path or 'body'}: nested deeper than {MAX_DEPTH} levels.")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                check_json_safe(key, sub, depth + 1)
            check_json_safe(item, sub, depth + 1)


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored, and
    values nothing downstream can take (see :func:`check_json_safe`), so that one caller's
    bad input fails alone, with its ``param``, before it joins a batch."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _json_safe(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if _CHECKING.get():  # a model nested in one being checked: already covered
            return handler(data)
        token = _CHECKING.set(True)
        try:
            if isinstance(data, dict):
                check_json_safe(data)
            return handler(data)
        finally:
            _CHECKING.reset(token)
