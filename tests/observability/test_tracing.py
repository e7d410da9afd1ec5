"""One trace from the agent's run through the human's decision: OTLP to a receiver."""

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from backend.core.errors import ApiError
from backend.observability import tracing
from backend.proposals.batch import Placed
from signoff import Client
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import AgentCreds, make_agent, refund_payload
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.servers import ApiServer, OidcProvider, api_server


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


@pytest.fixture
def traced_server(db: Database, oidc: OidcProvider, receiver: OtlpReceiver) -> Iterator[ApiServer]:
    env = server_env(
        db,
        oidc.issuer,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_SERVICE_NAME="signoff",
    )
    with api_server(env) as srv:
        yield srv


def test_one_trace_holds_the_agents_run_placement_judgement_decision_and_execution(
    traced_server: ApiServer, receiver: OtlpReceiver, lead: dict[str, str]
) -> None:
    bot: AgentCreds = make_agent()
    provider = TracerProvider(resource=Resource.create({"service.name": "refund-agent"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    )
    agent_tracer = provider.get_tracer("refund-agent")
    with (
        agent_tracer.start_as_current_span("agent.run") as run,
        Client(url=traced_server.url, api_key=bot.key) as client,
    ):
        trace_id = format(run.get_span_context().trace_id, "032x")
        handle = client.propose("refund", refund_payload(250.0), summary="Refund $250")
        assert handle.status == "pending"
        # The SDK linked the proposal to the agent's run.
        placed = client.get(handle.id)
        assert placed.context["trace_id"] == trace_id
        # The reviewer decides in a request of their own, without the agent's traceparent.
        r = httpx.post(
            f"{traced_server.url}/v1/proposals/{handle.id}/decisions",
            json={"verdict": "approve", "comment": "ok"},
            headers=lead,
        )
        assert r.status_code == 201, r.text
        assert handle.wait(timeout=10).status == "approved"
        handle.report("succeeded", {"refund_id": "re_1"})
    provider.shutdown()

    create = "POST /v1/proposals"
    wanted = {"agent.run", create, "placement.batch", "proposal.decide", "proposal.execution"}
    spans = receiver.wait_for(trace_id, wanted)
    names = {s.name for s in spans}
    assert wanted <= names, names
    by_name = {s.name: s for s in spans}
    assert by_name["agent.run"].service == "refund-agent"
    assert {by_name[n].service for n in wanted - {"agent.run"}} == {"signoff"}
    # The create request's span is the agent's run's child, and says what placing did:
    # the proposal and the policy's judgement (its version, outcome and rule ids).
    request = by_name[create]
    assert request.parent_span_id == by_name["agent.run"].span_id
    assert request.attributes["signoff.proposal.id"] == handle.id
    assert request.attributes["signoff.proposal.status"] == "pending"
    judged = placed.policy
    assert judged.version is not None and judged.policy_ids, judged
    assert request.attributes["signoff.policy.version"] == judged.version
    assert request.attributes["signoff.policy.outcome"] == judged.outcome == "propose"
    assert request.attributes["signoff.policy.ids"] == judged.policy_ids
    assert request.attributes["http.route"] == "/v1/proposals"
    assert request.attributes["http.response.status_code"] == 201
    # The batch that placed it (alone here) is the request's child.
    assert by_name["placement.batch"].parent_span_id == request.span_id
    assert by_name["proposal.decide"].attributes["signoff.decision.verdict"] == "approve"
    assert by_name["proposal.execution"].attributes["signoff.execution.status"] == "succeeded"
    # The reviewer's request came without a traceparent: its own trace, linked from the decision.
    (linked,) = by_name["proposal.decide"].links
    reviewer_request = next(s for s in receiver.spans if s.trace_id == linked)
    assert reviewer_request.name == "POST /v1/proposals/{proposal_id}/decisions"
    assert reviewer_request.parent_span_id == ""
    assert reviewer_request.trace_id != trace_id
    assert by_name["proposal.decide"].links == [reviewer_request.trace_id]


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.wanted(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    )
    assert not tracing.wanted({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


def test_a_batch_is_one_span_in_the_first_requests_trace_linked_from_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("signoff"))
    monkeypatch.setattr(tracing, "_enabled", True)
    t = provider.get_tracer("test")
    unsampled = NonRecordingSpan(SpanContext(7, 8, is_remote=True, trace_flags=TraceFlags(0)))
    first, second = t.start_span("POST /v1/proposals"), t.start_span("POST /v1/proposals")
    requests = [unsampled, first, second]
    with tracing.placement_batch(requests) as batch:
        assert batch is not None
    placed = Placed(
        201,
        {
            "id": "prop_1",
            "status": "pending",
            "policy": {"version": 4, "outcome": "propose", "policy_ids": ["r1"]},
        },
    )
    outcomes = [Placed(201, {"id": "prop_0"}), placed, ApiError(409, "conflict", "no")]
    for request, outcome in zip(requests, outcomes, strict=True):
        tracing.placed(request, outcome, batch)
    first.end()
    second.end()
    spans = {s.name: s for s in memory.get_finished_spans() if s.name == "placement.batch"}
    (batch,) = spans.values()
    # The first sampled request is the batch's parent; the next one links to the batch.
    assert batch.parent is not None and batch.parent.span_id == first.get_span_context().span_id
    assert batch.attributes["signoff.batch.size"] == 3
    assert [link.context.span_id for link in second.links] == [batch.context.span_id]
    assert not first.links
    assert first.attributes["signoff.proposal.id"] == "prop_1"
    assert first.attributes["signoff.policy.version"] == 4
    assert first.attributes["signoff.policy.ids"] == ("r1",)
    assert second.attributes["signoff.error"] == "ApiError"


def test_a_batch_of_unsampled_requests_makes_no_span(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("signoff"))
    monkeypatch.setattr(tracing, "_enabled", True)
    unsampled = NonRecordingSpan(SpanContext(7, 8, is_remote=True, trace_flags=TraceFlags(0)))
    with tracing.placement_batch([unsampled, None]) as batch:
        assert batch is None
    assert memory.get_finished_spans() == ()
