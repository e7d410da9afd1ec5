"""OpenTelemetry traces: one trace from the agent's run through the human's decision.

Off by default. :func:`configure` turns it on when the standard variables ask for it
(``OTEL_TRACES_EXPORTER=otlp``, or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` wins), and the SDK reads
the rest itself: ``OTEL_SERVICE_NAME`` (default ``signoff``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*``. When off, every
tracer is the API's no-op one and the request middleware is not even installed.

The agent's trace continues here: the SDK sends W3C ``traceparent`` on every call, each
request's span is that trace's child, and placing a proposal stores the request's
``traceparent`` on the proposal, so the decision (made later, in a reviewer's request) and
the webhook deliveries join the agent's trace too; the reviewer's own request span is
linked. The proposal's ``context.trace_id``, when it names another trace, is linked.
"""

import importlib.util
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "signoff"
_enabled = False
# FastAPI 0.165+ makes the request spans itself (fastapi.telemetry) from the global tracer
# provider; :class:`TracingMiddleware` stands in for older versions.
NATIVE_REQUEST_SPANS = importlib.util.find_spec("fastapi.telemetry") is not None


def wanted(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the standard OTEL_* variables ask for traces (this service's default: no)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure() -> bool:
    """Install the SDK's tracer provider with the OTLP/HTTP exporter when asked (once)."""
    global _enabled
    if _enabled or not wanted():
        return _enabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "signoff")})
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter = (
        ConsoleSpanExporter() if os.environ.get("OTEL_TRACES_EXPORTER") == "console" else OTLPSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def fastapi_options() -> dict[str, Any]:
    """FastAPI's own telemetry: request spans only. Its metrics are Prometheus' job here,
    its logs would carry stack traces, and per-dependency spans cost throughput."""
    if not NATIVE_REQUEST_SPANS:
        return {}
    return {"telemetry": {"metrics": False, "logs": False, "operation_spans": False}}


def enabled() -> bool:
    return _enabled


def shutdown() -> None:
    """Flush what is queued (at shutdown, so the last spans are not lost)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


# --- carrying a trace across time: the traceparent stored on a proposal ------------------


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store and continue later (None if off)."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def outgoing_headers() -> dict[str, str]:
    """``traceparent`` for an outgoing call, so the receiver continues the trace."""
    carrier: dict[str, str] = {}
    if _enabled:
        propagate.inject(carrier)
    return carrier


def context_of(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent or not _enabled:
        return None
    return propagate.extract({"traceparent": traceparent})


def _trace_link(trace_id: Any, parent: otel_context.Context | None = None) -> list[Link]:
    """A link to the trace the agent named in ``context.trace_id`` (32 hex digits), unless
    the span is in that trace already."""
    if not isinstance(trace_id, str) or len(trace_id) != 32:
        return []
    try:
        number = int(trace_id, 16)
    except ValueError:
        return []
    if number == 0 or number == trace.get_current_span(parent).get_span_context().trace_id:
        return []
    # A link needs a span id; the agent named only its trace, so point at its root.
    linked = SpanContext(number, 1, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return [Link(linked, {"signoff.link": "context.trace_id"})]


@contextmanager
def span(
    name: str,
    *,
    traceparent: str | None = None,
    parent: otel_context.Context | None = None,
    attributes: dict[str, Any] | None = None,
    context_trace_id: Any = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A span, the child of ``parent`` or of the stored ``traceparent`` when given (the
    caller's current span is then linked instead), else of the current span."""
    if not _enabled:
        yield trace.INVALID_SPAN
        return
    all_links = list(links)
    if traceparent and parent is None:
        parent = context_of(traceparent)
        here = trace.get_current_span().get_span_context()
        if here.is_valid:
            all_links.append(Link(here, {"signoff.link": "request"}))
    all_links += _trace_link(context_trace_id, parent)
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer().start_as_current_span(name, context=parent, attributes=clean, links=all_links) as s:
        yield s


def now() -> int:
    """A span's start time, for :func:`finished` (0 when tracing is off)."""
    return time.time_ns() if _enabled else 0


def finished(
    name: str,
    started: int,
    *,
    traceparent: str | None = None,
    attributes: dict[str, Any] | None = None,
    context_trace_id: Any = None,
) -> None:
    """Record a span that began at ``started`` and ends now, in the trace of the stored
    ``traceparent`` (the caller's current span is linked) or else the current one. For work
    whose trace is known only once it has read its proposal."""
    if not _enabled:
        return
    links: list[Link] = []
    parent = context_of(traceparent)
    here = trace.get_current_span().get_span_context()
    if parent is not None and here.is_valid:
        links.append(Link(here, {"signoff.link": "request"}))
    links += _trace_link(context_trace_id, parent)
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    tracer().start_span(name, context=parent, attributes=clean, links=links, start_time=started).end()


def annotate(target: Span, attributes: dict[str, Any]) -> None:
    """Set the attributes that have a value (OpenTelemetry refuses None)."""
    if _enabled:
        target.set_attributes({k: v for k, v in attributes.items() if v is not None})


def verdict_attributes(verdict: Any) -> dict[str, Any]:
    """The policy's answer, as span attributes."""
    return {
        "signoff.policy.version": verdict.version,
        "signoff.policy.outcome": verdict.outcome,
        "signoff.policy.ids": list(verdict.policy_ids),
    }


# --- a placement batch: one span per batch, one per proposal in it -----------------------


@contextmanager
def placement_batch(traceparents: Sequence[str | None]) -> Iterator[list[Span]]:
    """Spans for a batch placed together: ``placement`` in each request's trace, and one
    ``placement.batch`` linked to all of them (its parent is the first request)."""
    if not _enabled:
        yield []
        return
    started = time.time_ns()
    t = tracer()
    parents = [context_of(tp) for tp in traceparents]
    spans = [t.start_span("placement", context=p, start_time=started) for p in parents]
    links = [Link(s.get_span_context()) for s in spans]
    attributes = {"signoff.batch.size": len(parents)}
    with t.start_as_current_span("placement.batch", context=parents[0], links=links, attributes=attributes):
        try:
            yield spans
        finally:
            for s in spans:
                s.set_attribute("signoff.batch.size", len(parents))
                s.end()


def placed(spans: Sequence[Span], outcomes: Sequence[Any]) -> None:
    """Each proposal's ``placement`` span says what became of it."""
    for s, outcome in zip(spans, outcomes, strict=False):
        body = getattr(outcome, "body", None)
        if isinstance(body, dict):
            policy = body.get("policy") or {}
            annotate(
                s,
                {
                    "signoff.proposal.id": body.get("id"),
                    "signoff.proposal.status": body.get("status"),
                    "signoff.proposal.mode": body.get("mode"),
                    "signoff.policy.outcome": policy.get("outcome"),
                    "signoff.http.status": getattr(outcome, "status", None),
                },
            )
        elif isinstance(outcome, BaseException):
            s.set_attribute("signoff.error", type(outcome).__name__)


# --- requests ------------------------------------------------------------------------------


class TracingMiddleware:
    """A SERVER span per HTTP request, the child of the caller's W3C ``traceparent`` (for
    FastAPI versions without native telemetry)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        parent = propagate.extract(headers)
        method = scope["method"]
        status = 500
        attrs = {"http.request.method": method, "url.path": scope.get("path", "")}
        with tracer().start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attrs
        ) as s:

            async def _send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, _send)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    s.update_name(f"{method} {route}")
                    s.set_attribute("http.route", route)
                s.set_attribute("http.response.status_code", status)
                if status >= 500:
                    s.set_status(trace.Status(trace.StatusCode.ERROR))
