"""The SDK through a network that drops connections mid-request: still one proposal, one run."""

import asyncio
from collections.abc import Iterator

import pytest

import signoff
from tests.support.factories import AgentCreds, refund_payload
from tests.support.sdk_helpers import DroppingProxy, Reviewer, Rule, proposals_of
from tests.support.servers import ApiServer

CREATE = r"^POST /v1/proposals HTTP"
WAIT = r"^GET /v1/proposals/\w+/decision"
REPORT = r"^POST /v1/proposals/\w+/execution"


@pytest.fixture
def proxy(server: ApiServer) -> Iterator[DroppingProxy]:
    p = DroppingProxy(server.port)
    yield p
    p.close()


def _flaky(proxy: DroppingProxy) -> None:
    proxy.rules = [
        Rule(CREATE, "drop_request"),  # never reached the server
        Rule(CREATE, "drop_response", times=2),  # the server created it; the agent never heard
        Rule(WAIT, "drop_request"),
        Rule(WAIT, "drop_response", times=2),  # the decision itself is lost in transit
        Rule(REPORT, "drop_response"),  # recorded, but the agent does not know
    ]


def _assert_dropped_everywhere(proxy: DroppingProxy) -> None:
    for rule in proxy.rules:
        assert rule.hits == rule.times, (rule, proxy.log)


def test_dropped_connections_during_propose_and_wait(
    proxy: DroppingProxy, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    _flaky(proxy)
    runs: list[dict[str, object]] = []
    client = signoff.Client(proxy.url, agent.key, backoff=0.05, max_backoff=0.2)

    @signoff.require_approval("refund", client=client)
    def refund(**payload: object) -> dict[str, str]:
        runs.append(payload)
        return {"refund_id": "re_net"}

    reviewer = Reviewer(server.url, lead, agent, delay=0.5)
    assert refund(**refund_payload(150)) == {"refund_id": "re_net"}
    reviewer.finish()
    _assert_dropped_everywhere(proxy)

    (row,) = proposals_of(agent)  # exactly one proposal
    assert len(runs) == 1  # the tool ran at most once (here: once, as it was approved)
    view = signoff.Client(server.url, agent.key).get(row.id)
    assert view.status == "executed"
    assert view.execution is not None and view.execution.result == {"refund_id": "re_net"}


def test_dropped_connections_with_the_async_client(
    proxy: DroppingProxy, server: ApiServer, agent: AgentCreds, lead: dict[str, str]
) -> None:
    _flaky(proxy)
    runs: list[int] = []

    async def main() -> object:
        async with signoff.AsyncClient(proxy.url, agent.key, backoff=0.05, max_backoff=0.2) as ac:

            @signoff.require_approval("refund", client=ac)
            async def refund(**payload: object) -> dict[str, str]:
                runs.append(1)
                return {"refund_id": "re_async"}

            return await refund(**refund_payload(150))

    reviewer = Reviewer(server.url, lead, agent, delay=0.5)
    assert asyncio.run(main()) == {"refund_id": "re_async"}
    reviewer.finish()
    _assert_dropped_everywhere(proxy)
    (row,) = proposals_of(agent)
    assert runs == [1] and row.status == "executed"


def test_a_server_that_stays_unreachable_raises_a_connection_error(agent: AgentCreds) -> None:
    client = signoff.Client("http://127.0.0.1:9", agent.key, max_retries=2, backoff=0.01)
    with pytest.raises(signoff.APIConnectionError):
        client.propose("refund", refund_payload())
