"""What one traced create's span costs, in process: recording it, and encoding and sending it.

    .venv/bin/python bench/span_cost.py [-n 5000] [--rounds 3]

``bench/tracing.py`` measures tracing's cost over HTTP, where the machine's other load moves
single rounds by ±10 %. This takes the span apart, single-threaded, with the process's CPU
time: the SDK's tracer provider with the same exporter the server uses
(``backend/observability/otlp.py``), sending to a receiver in this process that discards.

- ``request span``: :class:`TracingMiddleware` around an ASGI app that answers at once, with
  the caller's sampled ``traceparent``, then what placing adds (:func:`tracing.placed`: the
  proposal's and the policy's attributes and the link to its batch). The spans go to a
  processor that drops them, so this is recording alone.
- ``encode``: :func:`encode` of a batch of 512 such spans (the SDK's batch size), per span.
- ``export``: the exporter's whole ``export`` (encode, serialise, POST), per span.

Their sum is what tracing adds to a create beyond its share of the batch's own span; compare
it with the server CPU per create that ``bench/tracing.py`` prints with tracing off.
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backend.observability import tracing
from backend.observability.otlp import OtlpSpanExporter, encode
from backend.proposals.batch import Placed

HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk_bench"),
    (b"idempotency-key", b"bench"),
]
OUTCOME = Placed(
    201,
    {
        "id": "prp_01JBENCH0000000000000000000",
        "status": "pending",
        "policy": {"version": 3, "outcome": "propose", "policy_ids": ["refund-limit"]},
    },
)


class _Discard(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


class _Drop(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _use(provider: TracerProvider) -> None:
    tracing._tracer = provider.get_tracer(tracing.TRACER_NAME)
    tracing._enabled = True


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _record(n: int, batch: tracing.Batch) -> float:
    """CPU seconds per request span, recorded and ended, with placing's annotations."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None:
        pass

    async def placing(scope: Any, receive: Any, send: Any) -> None:
        tracing.placed(tracing.current_span(), OUTCOME, batch)
        await _answer(scope, receive, send)

    app = tracing.TracingMiddleware(placing)

    async def run() -> None:
        for _ in range(n):
            scope = {"type": "http", "method": "POST", "path": "/v1/proposals", "scheme": "http"}
            await app({**scope, "headers": HEADERS}, receive, send)

    started = time.process_time()
    asyncio.run(run())
    return (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}/v1/traces"

    dropping = TracerProvider()
    dropping.add_span_processor(SimpleSpanProcessor(_Drop()))
    memory = InMemorySpanExporter()
    keeping = TracerProvider()
    keeping.add_span_processor(SimpleSpanProcessor(memory))
    exporter = OtlpSpanExporter()

    recorded, encoded, exported = [], [], []
    for _ in range(args.rounds):
        _use(dropping)
        with tracing.placement_batch([tracing.tracer().start_span("POST /v1/proposals")]) as batch:
            assert batch is not None
            recorded.append(_record(args.n, batch))
            _use(keeping)
            memory.clear()
            _record(512, batch)
        spans: list[ReadableSpan] = list(memory.get_finished_spans())[-512:]
        started = time.process_time()
        encode(spans).SerializePartialToString()
        encoded.append((time.process_time() - started) / len(spans))
        started = time.process_time()
        exporter.export(spans)
        exported.append((time.process_time() - started) / len(spans))
    exporter.shutdown()
    receiver.shutdown()

    def us(values: list[float]) -> str:
        rounds = ", ".join(f"{v * 1e6:.1f}" for v in values)
        return f"{statistics.median(values) * 1e6:6.1f} µs (rounds {rounds})"

    print(f"request span, recorded with placing's attributes and link: {us(recorded)}")
    print(f"encode, per span (batches of 512):                         {us(encoded)}")
    print(f"export (encode, serialise, POST), per span:                {us(exported)}")
    print(f"per traced create, recorded + exported:                    "
          f"{(statistics.median(recorded) + statistics.median(exported)) * 1e6:6.1f} µs")


if __name__ == "__main__":
    main()
