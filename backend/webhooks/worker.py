"""The background sender of webhook deliveries.

It claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas never
send the same one at once; SQLite has one writer) by pushing their next attempt a lease
ahead, sends them from a small thread pool with short timeouts, and records every attempt.
Failures back off exponentially (x4 from `backoff_seconds`) and give up after
`retry_hours`. A crashed sender's claim simply lapses with the lease.
"""

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from jsonschema import Draft202012Validator
from sqlalchemy import select, update

from backend.core.db import is_sqlite, transaction
from backend.observability import metrics, tracing
from backend.proposals import receipts, transitions
from backend.webhooks import secrets, targets
from backend.webhooks.events import wakeup
from backend.webhooks.settings import WebhookSettings
from backend.webhooks.signing import signed_headers
from models.action_types import ActionType
from models.common import utcnow
from models.proposals import Execution, Proposal, Status
from models.webhooks import EXECUTE_EVENT, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = structlog.get_logger()
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Due:
    id: str
    url: str
    secret: str
    body: str
    event_type: str
    proposal_id: str | None
    attempts: int
    created_at: datetime
    # The proposal's stored traceparent: the delivery joins the proposal's trace.
    traceparent: str | None = None


def backoff(settings: WebhookSettings, attempt: int) -> float:
    """Delay before the retry that follows attempt number `attempt` (1-based)."""
    return min(settings.max_backoff_seconds, settings.backoff_seconds * 4 ** (attempt - 1))


def claim_due(settings: WebhookSettings, limit: int) -> list[Due]:
    with transaction() as session:
        now = utcnow()
        query = (
            select(
                WebhookDelivery.id,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookDelivery.body,
                WebhookDelivery.event_type,
                WebhookDelivery.proposal_id,
                WebhookDelivery.attempts,
                WebhookDelivery.created_at,
                Proposal.traceparent,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)  # type: ignore[arg-type]
            .outerjoin(Proposal, Proposal.id == WebhookDelivery.proposal_id)  # type: ignore[arg-type]
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)  # type: ignore[arg-type]
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if not is_sqlite(str(session.get_bind().url)):
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)  # type: ignore[arg-type]
        rows = [Due(*r) for r in session.execute(query).all()]
        if rows:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([r.id for r in rows]))  # type: ignore[attr-defined]
                .values(next_attempt_at=now + timedelta(seconds=settings.lease_seconds))
            )
        return rows


def _execution_from(response: httpx.Response) -> tuple[str, Any, str | None]:
    """The executor contract: 2xx = applied; a JSON body may say {"status", "result", "error"}."""
    try:
        body = orjson.loads(response.content[:MAX_RESPONSE_BYTES])
    except orjson.JSONDecodeError:
        return "succeeded", None, None
    if isinstance(body, dict) and body.get("status") in ("succeeded", "failed"):
        error = body.get("error")
        return body["status"], body.get("result"), str(error)[:10_000] if error is not None else None
    return "succeeded", body, None


def _declared(schema: dict[str, Any] | None, result: Any) -> Any:
    """What of an executor's result the agent may see: only what the action type's
    ``result_schema`` declares (the declared properties of a result that fits it); nothing
    when it declares none or the result does not fit. The whole answer stays on the row."""
    if schema is None or result is None:
        return None
    if not Draft202012Validator(schema).is_valid(result):
        return None
    declared = schema.get("properties")
    if isinstance(result, dict) and isinstance(declared, dict):
        return {k: v for k, v in result.items() if k in declared}
    return result


def _record_execution(session: Any, due: Due, response: httpx.Response) -> None:
    pid = due.proposal_id
    if pid is None or session.get(Execution, pid) is not None:
        return
    proposal = session.get(Proposal, pid)
    if proposal is None or proposal.status != Status.approved.value:
        return
    status, answer, error = _execution_from(response)
    action_type = session.get(ActionType, proposal.action_type)
    result = _declared(action_type.result_schema if action_type else None, answer)
    receipt = receipts.for_proposal(session, pid)
    session.add(
        Execution(
            proposal_id=pid,
            status=status,
            result=result,
            error=error,
            request_hash=hashlib.sha256(response.content[:MAX_RESPONSE_BYTES]).hexdigest(),
            reported_by="executor",
            receipt_jti=receipt.jti if receipt else None,
            response=answer,
        )
    )
    session.flush()
    transitions.finish(
        session,
        pid,
        status == "succeeded",
        actor="system",
        data={
            "status": status,
            "error": error,
            "reported_by": "executor",
            "delivery_id": due.id,
            "result_sha256": hashlib.sha256(orjson.dumps(result)).hexdigest(),
        },
    )


def _post(settings: WebhookSettings, http: httpx.Client, due: Due) -> httpx.Response:
    """Check the target again (its name may resolve elsewhere now) and send to the very
    addresses checked; raises UnsafeTarget instead of sending into the internal network."""
    target = targets.check(due.url, targets.parse_allowlist(settings.allowlist))
    url, host, extensions = targets.pinned_request(target)
    signed = signed_headers(secrets.unseal(due.secret), due.id, due.body)
    headers = {**signed, **tracing.outgoing_headers(), **host}
    return http.post(url, content=due.body, headers=headers, extensions=extensions)


def attempt(settings: WebhookSettings, http: httpx.Client, due: Due) -> None:
    """One try at one delivery, recorded whatever happens."""
    response: httpx.Response | None = None
    error: str | None = None
    started = time.perf_counter()
    attributes = {"signoff.webhook.event_type": due.event_type, "signoff.webhook.delivery_id": due.id}
    with tracing.span("webhook.deliver", traceparent=due.traceparent, attributes=attributes) as span:
        try:
            response = _post(settings, http, due)
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        except (targets.UnsafeTarget, secrets.SecretUnreadable) as exc:
            error = f"refused: {exc}"[:1000]
        tracing.annotate(span, {"http.response.status_code": response.status_code if response else None})
    latency_ms = (time.perf_counter() - started) * 1000
    ok = response is not None and 200 <= response.status_code < 300
    if response is not None and not ok:
        error = f"HTTP {response.status_code}"
        if response.is_redirect:
            error += " (redirects are not followed)"
    if not ok:
        metrics.webhook_failed(due.event_type)
    number = due.attempts + 1
    now = utcnow()
    values: dict[str, Any] = {
        "attempts": number,
        "last_status_code": response.status_code if response is not None else None,
        "last_latency_ms": latency_ms,
        "last_error": error,
        "updated_at": now,
    }
    if ok:
        values.update(status="succeeded", delivered_at=now)
    else:
        retry_at = now + timedelta(seconds=backoff(settings, number))
        if retry_at > due.created_at + timedelta(hours=settings.retry_hours):
            values.update(status="failed")
        else:
            values.update(next_attempt_at=retry_at)
    with transaction() as session:
        session.add(
            WebhookAttempt(
                delivery_id=due.id,
                number=number,
                status_code=values["last_status_code"],
                latency_ms=latency_ms,
                error=error,
                at=now,
            )
        )
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == due.id, WebhookDelivery.status == "pending")  # type: ignore[arg-type]
            .values(**values)
        )
        if ok and due.event_type == EXECUTE_EVENT:
            assert response is not None
            _record_execution(session, due, response)


class WebhookWorker(threading.Thread):
    def __init__(self, settings: WebhookSettings | None = None) -> None:
        super().__init__(name="signoff-webhooks", daemon=True)
        self.settings = settings or WebhookSettings()
        self._stop = threading.Event()
        self._free = self.settings.concurrency
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="signoff-webhook")
        # No redirects: a receiver must answer at the URL it registered.
        self._http = httpx.Client(timeout=self.settings.timeout_seconds, follow_redirects=False)

    def run(self) -> None:
        while not self._stop.is_set():
            wakeup.wait(self.settings.poll_seconds)
            wakeup.clear()
            try:
                self._dispatch()
            except Exception:
                log.exception("webhook_dispatch_failed")
                self._stop.wait(1.0)

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                free = self._free
            if free <= 0:
                return
            batch = claim_due(self.settings, free)
            if not batch:
                return
            for due in batch:
                with self._lock:
                    self._free -= 1
                self._pool.submit(self._send, due)

    def _send(self, due: Due) -> None:
        try:
            attempt(self.settings, self._http, due)
        except Exception:
            log.exception("webhook_attempt_failed", delivery_id=due.id)
        finally:
            with self._lock:
                self._free += 1
            wakeup.set()

    def stop(self) -> None:
        self._stop.set()
        wakeup.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()
