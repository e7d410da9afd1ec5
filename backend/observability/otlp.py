"""The official OTLP/HTTP span exporter, with its request message built in place.

The SDK's encoder (``opentelemetry.exporter.otlp.proto.common.trace_encoder``) makes every
attribute, span and scope a message of its own and then hands them to their parent, and the
protobuf runtime copies a message each time it joins a parent: each span is built once and
copied three times. At 100 % sampling that was the largest single cost of tracing a create
(about 30 µs a span with ten attributes, on the export thread but on the same cores).
:func:`encode` builds the same ``ExportTraceServiceRequest`` by adding each part where it
belongs, about a third of the cost; tests/observability/test_otlp.py checks that the two
encoders' messages are equal.

Everything else is the official exporter's: the ``OTEL_EXPORTER_OTLP_*`` settings
(endpoint, headers, timeout, compression, certificates), the transport and its retries,
the request size limit and the exporter's own metrics. If a future SDK no longer has the
parts :meth:`OtlpSpanExporter.export` relies on, it falls back to the SDK's own export.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanContext

# OTLP's SpanFlags: the parent's is_remote is known, and whether it is remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


def _flags(context: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if context is not None and context.is_remote else _HAS_IS_REMOTE


def _value(target: AnyValue, value: Any) -> None:
    """One attribute value, as the SDK encodes it (None stays an empty value)."""
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, Sequence):
        values = target.array_value.values
        for item in value:
            _value(values.add(), item)
        if not value:
            target.array_value.SetInParent()
    elif isinstance(value, Mapping):
        pairs = target.kvlist_value.values
        for key, item in value.items():
            pair = pairs.add()
            pair.key = str(key)
            _value(pair.value, item)
        if not value:
            target.kvlist_value.SetInParent()
    else:
        raise TypeError(f"Invalid type {type(value)} of value {value}")


def _attributes(target: Any, attributes: Mapping[str, Any] | None) -> None:
    for key, value in (attributes or {}).items():
        pair = target.add()
        pair.key = key
        _value(pair.value, value)


def encode(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request for ``spans``: grouped by resource, then instrumentation scope."""
    request = ExportTraceServiceRequest()
    # Spans of one provider share its Resource and each tracer's scope object: group by
    # identity (the SDK hashes each span's resource, a JSON dump of its attributes).
    resources: dict[int, dict[int, Any]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        scopes = resources.get(id(resource))
        if scopes is None:
            scopes = resources[id(resource)] = {}
            group = request.resource_spans.add()
            group.resource.SetInParent()
            _attributes(group.resource.attributes, resource.attributes)
            if resource.schema_url:
                group.schema_url = resource.schema_url
            scopes[-1] = group
        out = scopes.get(id(scope))
        if out is None:
            out = scopes[id(scope)] = scopes[-1].scope_spans.add()
            if scope is not None:
                out.scope.name = scope.name
                if scope.version:
                    out.scope.version = scope.version
                _attributes(out.scope.attributes, scope.attributes)
                if scope.schema_url:
                    out.schema_url = scope.schema_url
            else:
                out.scope.SetInParent()
        _span(out.spans.add(), span)
    return request


def _span(pb: Any, span: ReadableSpan) -> None:
    context = span.get_span_context()
    assert context is not None
    pb.trace_id = context.trace_id.to_bytes(16, "big")
    pb.span_id = context.span_id.to_bytes(8, "big")
    if context.trace_state:
        pb.trace_state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent is not None:
        pb.parent_span_id = span.parent.span_id.to_bytes(8, "big")
    pb.name = span.name
    pb.kind = span.kind.value + 1  # OTLP counts from SPAN_KIND_UNSPECIFIED
    pb.start_time_unix_nano = span.start_time or 0
    pb.end_time_unix_nano = span.end_time or 0
    _attributes(pb.attributes, span.attributes)
    for event in span.events:
        out = pb.events.add()
        out.name = event.name
        out.time_unix_nano = event.timestamp
        _attributes(out.attributes, event.attributes)
        out.dropped_attributes_count = event.dropped_attributes
    for link in span.links:
        out = pb.links.add()
        out.trace_id = link.context.trace_id.to_bytes(16, "big")
        out.span_id = link.context.span_id.to_bytes(8, "big")
        _attributes(out.attributes, link.attributes)
        out.dropped_attributes_count = link.dropped_attributes
        out.flags = _flags(link.context)
    pb.status.code = span.status.status_code.value
    if span.status.description:
        pb.status.message = span.status.description
    pb.dropped_attributes_count = span.dropped_attributes
    pb.dropped_events_count = span.dropped_events
    pb.dropped_links_count = span.dropped_links
    pb.flags = _flags(span.parent)


class OtlpSpanExporter(OTLPSpanExporter):
    """:class:`OTLPSpanExporter` sending the request :func:`encode` built."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        metrics = getattr(self, "_metrics", None)
        limit = getattr(self, "_max_request_size", None)
        if self._shutdown or client is None or metrics is None or not isinstance(limit, int):
            return super().export(spans)
        try:
            data = encode(spans).SerializePartialToString()
        except Exception:  # the SDK's encoder then says what it makes of it
            return super().export(spans)
        if 0 < limit < len(data):
            return super().export(spans)  # the SDK's own refusal, logged and counted
        with metrics.export_operation(len(spans)) as result:
            sent = client.export(data)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
