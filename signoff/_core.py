"""What the sync and async clients share: configuration, keys, backoff, response parsing."""

import contextlib
import hashlib
import json
import os
import random
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from signoff.errors import SignoffError, error_for
from signoff.types import EvidenceItem, ProposalContext

DEFAULT_URL = "http://localhost:8000"
USER_AGENT = "signoff-python/0.1.0"
# The server caps one long-poll at 60 s; ask for a little less so proxies with a 60 s idle
# timeout do not cut us off, and re-poll.
POLL_SECONDS = 50.0


@dataclass(frozen=True)
class Settings:
    url: str
    api_key: str
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float

    @classmethod
    def resolve(
        cls,
        url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
    ) -> "Settings":
        url = url or os.environ.get("SIGNOFF_URL") or DEFAULT_URL
        api_key = api_key or os.environ.get("SIGNOFF_API_KEY")
        if not api_key:
            raise SignoffError("No API key: pass api_key=... or set SIGNOFF_API_KEY (so_...).")
        return cls(url.rstrip("/"), api_key, timeout, max_retries, backoff, max_backoff)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT}

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Exponential backoff with jitter; a 429's Retry-After wins when it says more."""
        base = min(self.max_backoff, self.backoff * (2**attempt))
        delay = base * (0.5 + random.random() / 2)
        if response is not None and (after := response.headers.get("retry-after")):
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(after), self.max_backoff))
        return delay


def retryable(response: httpx.Response) -> bool:
    return response.status_code >= 500 or response.status_code == 429


def raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise error_for(response.status_code, body, dict(response.headers))


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def idempotency_key(task_id: str | None, action_type: str, payload: dict[str, Any]) -> str:
    """A fresh key, or one derived from the caller's task so a re-run task finds its proposal.

    The payload is part of the derivation: one task may propose several different actions,
    and the same action proposed again by a re-run of the task maps to the same proposal.
    """
    if task_id is None:
        return f"so-{uuid.uuid4().hex}"
    digest = hashlib.sha256(canonical([task_id, action_type, payload])).hexdigest()[:40]
    return f"so-task-{digest}"


def create_body(
    action_type: str,
    payload: dict[str, Any],
    summary: str,
    evidence: list[EvidenceItem | dict[str, Any]] | None,
    context: ProposalContext | dict[str, Any] | None,
    expires_in_seconds: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"action_type": action_type, "payload": payload, "summary": summary}
    if evidence:
        body["evidence"] = [_dump(EvidenceItem.model_validate(e)) for e in evidence]
    context_body = _dump(ProposalContext.model_validate(context)) if context else {}
    trace_id = current_trace_id()
    if trace_id and not context_body.get("trace_id"):  # link the proposal to the agent's run
        context_body["trace_id"] = trace_id
    if context_body:
        body["context"] = context_body
    if expires_in_seconds is not None:
        body["expires_in_seconds"] = expires_in_seconds
    return body


def trace_headers() -> dict[str, str]:
    """The current OpenTelemetry span as W3C ``traceparent`` (and ``tracestate``), so
    Signoff's spans join the agent's trace. Nothing when OpenTelemetry is absent or idle."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for the proposal's ``context.trace_id``."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def add_trace_headers(request: httpx.Request) -> None:
    """httpx request hook: every call (retries and long-polls too) carries the trace."""
    request.headers.update(trace_headers())


async def add_trace_headers_async(request: httpx.Request) -> None:
    add_trace_headers(request)


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def report_body(
    status: str, result: Any, error: str | None, receipt_jti: str | None = None
) -> dict[str, Any]:
    if status not in ("succeeded", "failed"):
        raise ValueError("status is 'succeeded' or 'failed'")
    from pydantic_core import to_jsonable_python

    body = {"status": status, "result": to_jsonable_python(result, fallback=repr), "error": error}
    if receipt_jti is not None:
        body["receipt_jti"] = receipt_jti
    return body
