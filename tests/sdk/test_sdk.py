"""The agent SDK against a real server: propose, wait, report, typed errors, the decorator."""

import asyncio
import subprocess
import sys

import httpx
import pytest

import signoff
from models.agents import Dial
from tests.support.factories import AgentCreds, make_agent, refund_payload
from tests.support.sdk_helpers import Reviewer, proposals_of
from tests.support.servers import ApiServer


@pytest.fixture
def client(server: ApiServer, agent: AgentCreds) -> signoff.Client:
    with signoff.Client(server.url, agent.key, backoff=0.05) as c:
        yield c


def test_sdk_imports_without_the_backend_stack() -> None:
    code = (
        "import sys, signoff; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'sqlmodel', 'fastapi', 'backend', 'models', 'psycopg', 'cedarpy')]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_wire_types_keep_the_servers_field_names() -> None:
    from models import proposals as wire
    from signoff import types

    for ours, theirs in [
        (types.ProposalPublic, wire.ProposalPublic),
        (types.DecisionState, wire.DecisionState),
        (types.DecisionPublic, wire.DecisionPublic),
        (types.ExecutionPublic, wire.ExecutionPublic),
        (types.EvidenceItem, wire.EvidenceItem),
        (types.ProposalContext, wire.ProposalContext),
    ]:
        assert set(ours.model_fields) == set(theirs.model_fields), ours.__name__


def test_config_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_URL", "http://example.invalid:9/")
    monkeypatch.setenv("SIGNOFF_API_KEY", "so_test")
    c = signoff.Client()
    assert c.settings.url == "http://example.invalid:9" and c.settings.api_key == "so_test"
    monkeypatch.delenv("SIGNOFF_API_KEY")
    with pytest.raises(signoff.SignoffError):
        signoff.Client()


def test_propose_wait_report_with_an_edit(
    client: signoff.Client, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    payload = refund_payload(150)
    edited = {**payload, "amount_usd": 120.0}
    reviewer = Reviewer(server.url, lead, agent, edited_payload=edited, comment="partial")
    handle = client.propose("refund", payload, summary="Refund", evidence=[{"kind": "note", "content": "x"}])
    assert handle.status == "pending" and not handle.replayed
    state = handle.wait(timeout=30)
    reviewer.finish()
    assert state.approved and state.edited and state.payload == edited
    execution = handle.report("succeeded", {"refund_id": "re_9"})
    assert execution.status == "succeeded" and execution.reported_by == f"agent:{agent.id}"
    assert handle.report("succeeded", {"refund_id": "re_9"}).status == "succeeded"  # replay
    with pytest.raises(signoff.ConflictError) as err:
        handle.report("failed", error="boom")
    assert err.value.code == "execution_already_reported"
    assert handle.refresh().status == "executed"


def test_task_id_makes_a_retried_create_a_replay(client: signoff.Client, agent: AgentCreds) -> None:
    payload = refund_payload(150)
    first = client.propose("refund", payload, task_id="ticket-1")
    again = client.propose("refund", payload, task_id="ticket-1")
    other = client.propose("refund", refund_payload(150), task_id="ticket-1")
    assert again.id == first.id and again.replayed
    assert other.id != first.id
    assert len(proposals_of(agent)) == 2


def test_api_errors_are_typed(client: signoff.Client, server: ApiServer) -> None:
    with pytest.raises(signoff.InvalidRequestError) as bad:
        client.propose("refund", {**refund_payload(), "amount_usd": -1})
    assert bad.value.code == "invalid_payload" and bad.value.param == "payload.amount_usd"
    ungranted = signoff.Client(server.url, make_agent(grants=()).key)
    with pytest.raises(signoff.PermissionDeniedError) as denied:
        ungranted.propose("refund", refund_payload())
    assert denied.value.code == "action_not_allowed" and denied.value.error["type"] == "permission_error"
    with pytest.raises(signoff.NotFoundError):
        client.get("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    with pytest.raises(signoff.AuthenticationError):
        signoff.Client(server.url, "so_wrong").get("01ARZ3NDEKTSV4RRFFQ69G5FAV")


def test_wait_times_out_and_cancel_ends_the_proposal(client: signoff.Client) -> None:
    handle = client.propose("refund", refund_payload(150))
    with pytest.raises(signoff.WaitTimeout) as timeout:
        handle.wait(timeout=0.3)
    assert timeout.value.state.status == "pending"
    assert handle.cancel().status == "cancelled"
    assert handle.wait(timeout=5).status == "cancelled"


# --- the decorator -------------------------------------------------------------------


def test_decorator_runs_once_with_the_edited_arguments(
    client: signoff.Client, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    calls: list[dict[str, object]] = []

    @signoff.require_approval("refund", summary="Refund ${amount_usd} on {order_id}", client=client)
    def refund(
        customer_id: str, order_id: str, amount_usd: float, currency: str = "USD", reason: str = ""
    ) -> dict:
        calls.append({"order_id": order_id, "amount_usd": amount_usd})
        return {"refund_id": f"re_{order_id}", "amount": amount_usd}

    payload = refund_payload(150)
    Reviewer(server.url, lead, agent, edited_payload={**payload, "amount_usd": 99.0})
    result = refund(payload["customer_id"], payload["order_id"], 150, reason=payload["reason"])
    assert calls == [{"order_id": payload["order_id"], "amount_usd": 99.0}]
    assert result["amount"] == 99.0
    (row,) = proposals_of(agent)
    assert row.status == "executed" and row.summary == f"Refund $150 on {payload['order_id']}"
    assert client.get(row.id).execution.result == result


def test_decorator_rejection_raises_with_reasons(
    client: signoff.Client, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    ran: list[int] = []

    @signoff.require_approval("refund", client=client)
    def refund(**payload: object) -> None:
        ran.append(1)

    Reviewer(server.url, lead, agent, verdict="reject", reason_codes=["wrong_amount"], comment="too much")
    with pytest.raises(signoff.Rejected) as rejected:
        refund(**refund_payload(500))
    assert rejected.value.reason_codes == ["wrong_amount"] and rejected.value.comment == "too much"
    assert ran == []


def test_decorator_in_draft_mode_never_runs_the_function(server: ApiServer, db: object) -> None:
    drafter = make_agent(dials={"refund": Dial.draft})
    ran: list[int] = []

    @signoff.require_approval("refund", client=signoff.Client(server.url, drafter.key))
    def refund(**payload: object) -> None:
        ran.append(1)

    with pytest.raises(signoff.Drafted) as drafted:
        refund(**refund_payload(20))
    assert ran == []
    (row,) = proposals_of(drafter)
    assert row.id == drafted.value.proposal_id and row.status == "pending" and row.mode == "draft"


def test_decorator_reports_a_failure_when_the_function_raises(
    client: signoff.Client, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    @signoff.require_approval("refund", client=client)
    def refund(**payload: object) -> None:
        raise RuntimeError("payment gateway down")

    Reviewer(server.url, lead, agent)
    with pytest.raises(RuntimeError):
        refund(**refund_payload(150))
    (row,) = proposals_of(agent)
    view = client.get(row.id)
    assert view.status == "failed" and "payment gateway down" in (view.execution.error or "")


def test_a_rerun_task_returns_the_recorded_result_without_running_again(
    client: signoff.Client, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    ran: list[int] = []

    @signoff.require_approval("refund", client=client)
    def refund(**payload: object) -> dict:
        ran.append(1)
        return {"refund_id": "re_once"}

    payload = refund_payload(150)
    Reviewer(server.url, lead, agent)
    with signoff.task("ticket-77"):
        first = refund(**payload)
        second = refund(**payload)  # e.g. the agent crashed after the tool and replays its task
    assert first == second == {"refund_id": "re_once"}
    assert ran == [1] and len(proposals_of(agent)) == 1


def test_async_decorator_and_client(server: ApiServer, agent: AgentCreds, lead: dict[str, str]) -> None:
    ran: list[float] = []

    async def main() -> object:
        async with signoff.AsyncClient(server.url, agent.key) as ac:

            @signoff.require_approval("refund", client=ac)
            async def refund(**payload: object) -> dict:
                ran.append(float(payload["amount_usd"]))  # type: ignore[arg-type]
                return {"ok": True}

            return await refund(**refund_payload(150))

    Reviewer(server.url, lead, agent)
    assert asyncio.run(main()) == {"ok": True}
    assert ran == [150.0]
    (row,) = proposals_of(agent)
    assert row.status == "executed"


def test_async_decorator_rejection(server: ApiServer, agent: AgentCreds, lead: dict[str, str]) -> None:
    async def main() -> None:
        async with signoff.AsyncClient(server.url, agent.key) as ac:

            @signoff.require_approval("refund", client=ac)
            async def refund(**payload: object) -> None:
                raise AssertionError("must not run")

            await refund(**refund_payload(150))

    Reviewer(server.url, lead, agent, verdict="reject", reason_codes=["duplicate"])
    with pytest.raises(signoff.Rejected) as rejected:
        asyncio.run(main())
    assert rejected.value.reason_codes == ["duplicate"]


def test_httpx_is_the_only_transport(client: signoff.Client) -> None:
    assert isinstance(client._http, httpx.Client)


def test_default_clients_come_from_the_environment(
    server: ApiServer, agent: AgentCreds, lead: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from signoff import decorator

    monkeypatch.setenv("SIGNOFF_URL", server.url)
    monkeypatch.setenv("SIGNOFF_API_KEY", agent.key)
    monkeypatch.setattr(decorator, "_default_sync", None)

    @signoff.require_approval("refund")
    def refund(**payload: object) -> str:
        return "sync"

    @signoff.require_approval("refund")
    async def refund_async(**payload: object) -> str:
        return "async"

    Reviewer(server.url, lead, agent, count=3)
    assert refund(**refund_payload(150)) == "sync"
    assert asyncio.run(refund_async(**refund_payload(150))) == "async"
    assert asyncio.run(refund_async(**refund_payload(150))) == "async"  # a new event loop, a new client
    assert sorted(p.status for p in proposals_of(agent)) == ["executed"] * 3
