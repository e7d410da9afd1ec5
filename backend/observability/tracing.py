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

A traced create makes one span, its request's: placing a proposal and the policy's
judgement of it become that span's attributes, and each batch the placer writes makes one
``placement.batch`` span. Spans are what tracing costs (docs/observability.md, "Cost").
"""

import importlib.util
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core.responses import StatusRecorder

TRACER_NAME = "signoff"
_enabled = False
# FastAPI 0.165+ has telemetry of its own (fastapi.telemetry), which would make request
# spans from the global tracer provider; :class:`TracingMiddleware` makes them instead.
NATIVE_TELEMETRY = importlib.util.find_spec("fastapi.telemetry") is not None


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
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    from backend.observability.otlp import OtlpSpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "signoff")})
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter = (
        ConsoleSpanExporter() if os.environ.get("OTEL_TRACES_EXPORTER") == "console" else OtlpSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def fastapi_options() -> dict[str, Any]:
    """FastAPI's own telemetry, off: :class:`TracingMiddleware` makes the request spans for
    two thirds of the cost, its metrics are Prometheus' job here, its logs would carry stack traces,
    and its per-dependency spans cost throughput."""
    if not NATIVE_TELEMETRY:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def enabled() -> bool:
    return _enabled


def shutdown() -> None:
    """Flush what is queued (at shutdown, so the last spans are not lost)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    """This service's tracer, got once: the SDK's ``get_tracer`` re-registers a warnings
    filter on every call (which also empties the warnings cache), tens of microseconds."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


# --- carrying a trace across time: the traceparent stored on a proposal ------------------


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store and continue later (None if off)."""
    if not _enabled:
        return None
    here = trace.get_current_span().get_span_context()
    if not here.is_valid:
        return None
    # W3C trace-context, written directly: what the propagator would write, without a
    # carrier and the baggage propagator's turn on every create.
    return f"00-{here.trace_id:032x}-{here.span_id:016x}-{here.trace_flags:02x}"


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


# --- a placement batch: one span per batch; each request's span says what became of it ----


def current_span() -> Span | None:
    """The current request's span, for the placer to annotate (None when tracing is off)."""
    if not _enabled:
        return None
    current = trace.get_current_span()
    return current if current.is_recording() else None


@dataclass(frozen=True)
class Batch:
    """A ``placement.batch`` span, as the requests it placed need it: its context to link,
    and the request span it is the child of (which needs no link)."""

    context: SpanContext
    parent: Span


@contextmanager
def placement_batch(requests: Sequence[Span | None]) -> Iterator[Batch | None]:
    """One ``placement.batch`` span for proposals placed together: the child of the first
    traced request. One span per batch, not one per proposal: a span costs tens of
    microseconds to record and encode, a link a few. The writer thread only opens it; each
    request's span is linked and annotated by :func:`placed`, on the event loop, since the
    writer's time is what every waiting request waits for."""
    first = next((s for s in requests if s is not None and s.is_recording()), None)
    if first is None:  # tracing off, or no request of this batch is sampled
        yield None
        return
    parent = trace.set_span_in_context(first)
    attributes = {"signoff.batch.size": len(requests)}
    with tracer().start_as_current_span("placement.batch", context=parent, attributes=attributes) as batch:
        yield Batch(batch.get_span_context(), first)


def placed(request: Span | None, outcome: Any, batch: Batch | None) -> None:
    """A request's span says what placing did: the proposal, and the policy's judgement (its
    version, outcome and rule ids), as attributes rather than spans of their own; and it
    links the batch that placed it, unless it is that batch's parent."""
    if request is None or not request.is_recording():
        return
    if batch is not None and request is not batch.parent:
        request.add_link(batch.context)
    body = getattr(outcome, "body", None)
    if isinstance(body, dict):
        policy = body.get("policy") or {}
        annotate(
            request,
            {
                "signoff.proposal.id": body.get("id"),
                "signoff.proposal.status": body.get("status"),
                "signoff.policy.version": policy.get("version"),
                "signoff.policy.outcome": policy.get("outcome") or None,
                "signoff.policy.ids": policy.get("policy_ids"),
            },
        )
    elif isinstance(outcome, BaseException):
        request.set_attribute("signoff.error", type(outcome).__name__)


# --- requests ------------------------------------------------------------------------------


class _AsgiHeaders(Getter[Sequence[tuple[bytes, bytes]]]):
    """Reads a propagator's headers straight from the ASGI scope's list, sparing a dict of
    every header per request."""

    def get(self, carrier: Sequence[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k == wanted]
        return values or None

    def keys(self, carrier: Sequence[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_ASGI_HEADERS = _AsgiHeaders()


class TracingMiddleware:
    """A SERVER span per HTTP request, the child of the caller's W3C ``traceparent`` (read
    by the configured propagators, ``OTEL_PROPAGATORS``), named ``{method} {route}``, with
    the HTTP semantic conventions' required attributes. Ours rather than FastAPI's native
    request spans: those add the server address, port and protocol version, an
    instrumentation check of the middleware stack and a context per request, half as much
    again as this one per request (docs/observability.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = propagate.extract(scope["headers"], getter=_ASGI_HEADERS)
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"], "url.scheme": scope["scheme"]}
        span = tracer().start_span(method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        sent = StatusRecorder(send)
        error: BaseException | None = None
        try:
            await self.app(scope, receive, sent)
        except BaseException as exc:
            error = exc
            raise
        finally:
            otel_context.detach(token)
            status = sent.status
            done: dict[str, Any] = {}
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                done["http.route"] = route
            if status:
                done["http.response.status_code"] = status
            if error is not None or not status or status >= 500:
                done["error.type"] = type(error).__qualname__ if error else str(status or "incomplete")
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.set_attributes(done)
            span.end()
