"""The exporter's in-place OTLP encoding says exactly what the SDK's encoder says."""

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from backend.observability.otlp import OtlpSpanExporter, encode
from tests.support.otlp_receiver import OtlpReceiver


def _spans() -> list[ReadableSpan]:
    """Spans with each thing OTLP carries: every attribute type, events, links, remote
    and local parents, trace state, status, kinds, two scopes, one with a version."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "signoff", "deployment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    ours = provider.get_tracer("signoff")
    theirs = provider.get_tracer("other", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0")
    remote = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
    )
    agent = trace.set_span_in_context(NonRecordingSpan(remote))
    attributes = {
        "s": "text",
        "i": 42,
        "f": 1.5,
        "b": True,
        "strings": ["a", "b"],
        "ints": [1, 2],
        "floats": [0.5],
        "bools": [False, True],
        "empty": [],
    }
    with ours.start_as_current_span("POST /v1/proposals", context=agent, kind=SpanKind.SERVER) as request:
        request.set_attributes(attributes)
        with ours.start_as_current_span("placement.batch", attributes={"signoff.batch.size": 2}) as batch:
            request.add_link(batch.get_span_context())
            request.add_link(remote, {"signoff.link": "context.trace_id"})
        request.add_event("judged", {"signoff.policy.version": 3, "ids": ["r1"]})
        request.add_event("bare")
        request.set_status(Status(StatusCode.ERROR, "refused"))
    with theirs.start_as_current_span("webhook.deliver", kind=SpanKind.CLIENT) as client:
        client.set_status(Status(StatusCode.OK))
    ours.start_span("root", kind=SpanKind.CONSUMER).end()
    theirs.start_span("produce", kind=SpanKind.PRODUCER).end()
    return list(memory.get_finished_spans())


def test_the_request_built_in_place_equals_the_sdks() -> None:
    spans = _spans()
    assert encode(spans) == encode_spans(spans)
    assert encode(spans[:1]) == encode_spans(spans[:1])
    assert encode([]) == encode_spans([])


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


def test_the_exporter_sends_what_the_sdks_exporter_sends(receiver: OtlpReceiver) -> None:
    spans = _spans()
    endpoint = f"{receiver.endpoint}/v1/traces"
    assert OTLPSpanExporter(endpoint=endpoint).export(spans) == SpanExportResult.SUCCESS
    official = list(receiver.spans)
    receiver.spans.clear()
    assert OtlpSpanExporter(endpoint=endpoint).export(spans) == SpanExportResult.SUCCESS
    assert receiver.spans == official
    assert len(official) == len(spans)


def test_a_failed_export_is_a_failure() -> None:
    # Nothing listens there: the official client's error, answered as a failure.
    exporter = OtlpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=1)
    assert exporter.export(_spans()) == SpanExportResult.FAILURE
