"""Kill switches: suspending one agent under load, and the global switch."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import AgentCreds, make_agent, refund_proposal
from tests.support.servers import OidcProvider, api_server

LOAD = 200


def test_suspend_during_200_concurrent_proposals(
    api: httpx.Client, db: Database, admin: dict[str, str], lead: dict[str, str]
) -> None:
    agent = make_agent()
    results: list[tuple[float, int, str]] = []
    suspended_at: list[float] = []

    def propose(_: int) -> None:
        started = time.monotonic()
        r = api.post("/v1/proposals", json=refund_proposal(60), headers=agent.headers)
        code = r.json()["error"]["code"] if r.status_code != 201 else ""
        results.append((started, r.status_code, code))

    with ThreadPoolExecutor(max_workers=16) as pool:
        # Half the load is in flight when the suspend lands; the other half starts after it.
        futures = [pool.submit(propose, i) for i in range(LOAD // 2)]
        while len(results) < LOAD // 10:
            time.sleep(0.005)
        in_flight = LOAD // 2 - len(results)
        r = api.post(f"/v1/agents/{agent.id}/suspend", json={"reason": "runaway"}, headers=admin)
        assert r.status_code == 200 and r.json()["suspended"] is True
        suspended_at.append(time.monotonic())
        futures += [pool.submit(propose, i) for i in range(LOAD // 2, LOAD)]
        for f in futures:
            f.result()

    cutoff = suspended_at[0]
    after = [(status, code) for started, status, code in results if started > cutoff]
    assert len(results) == LOAD
    assert in_flight > 0, "the suspend should land while proposals are in flight"
    assert len(after) >= LOAD // 2
    assert all(status == 403 and code == "agent_suspended" for status, code in after), after
    assert any(status == 201 for _, status, _ in results)

    pending = api.get("/v1/queue", params={"agent": agent.name, "limit": 200}, headers=lead).json()["items"]
    created = sum(1 for _, status, _ in results if status == 201)
    assert len(pending) == created
    for item in pending:
        r = api.post(f"/v1/proposals/{item['id']}/decisions", json={"verdict": "approve"}, headers=lead)
        assert r.status_code == 409 and r.json()["error"]["code"] == "agent_suspended", r.text
    assert (
        len(api.get("/v1/queue", params={"agent": agent.name, "limit": 200}, headers=lead).json()["items"])
        == created
    )
    # Every other request of the agent is refused too.
    r = api.get(f"/v1/proposals/{pending[0]['id']}", headers=agent.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "agent_suspended"

    assert (
        api.post(f"/v1/agents/{agent.id}/resume", json={"reason": "fixed"}, headers=admin).status_code == 200
    )
    r = api.post(f"/v1/proposals/{pending[0]['id']}/decisions", json={"verdict": "approve"}, headers=lead)
    assert r.status_code == 201, r.text
    actions = [
        e["action"]
        for e in api.get(
            "/v1/audit", params={"subject": f"agent:{agent.id}", "limit": 500}, headers=admin
        ).json()["items"]
    ]
    assert "agent.suspended" in actions and "agent.resumed" in actions
    assert actions.count("proposal.refused") == len(after) + sum(
        1 for started, status, _ in results if started <= cutoff and status == 403
    )


@pytest.fixture
def own_api(fresh_database: Database, oidc: OidcProvider) -> Iterator[httpx.Client]:
    with (
        api_server(server_env(fresh_database, oidc.issuer)) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        yield client


def _post(api: httpx.Client, agent: AgentCreds) -> httpx.Response:
    return api.post("/v1/proposals", json=refund_proposal(60), headers=agent.headers)


def test_global_kill_switch_stops_every_agent(
    own_api: httpx.Client, admin: dict[str, str], lead: dict[str, str]
) -> None:
    api = own_api
    one, two = make_agent(), make_agent()
    pending: dict[str, Any] = _post(api, one).json()
    assert pending["status"] == "pending"
    engaged = api.post("/v1/kill-switch", json={"engaged": True, "reason": "incident"}, headers=admin)
    assert engaged.status_code == 200 and engaged.json()["engaged"] is True
    for agent in (one, two):
        r = _post(api, agent)
        assert r.status_code == 403 and r.json()["error"]["code"] == "kill_switch_engaged"
    r = api.get(f"/v1/proposals/{pending['id']}", headers=one.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "kill_switch_engaged"
    r = api.post(f"/v1/proposals/{pending['id']}/decisions", json={"verdict": "approve"}, headers=lead)
    assert r.status_code == 409 and r.json()["error"]["code"] == "kill_switch_engaged"
    assert api.get(f"/v1/proposals/{pending['id']}", headers=lead).json()["status"] == "pending"

    released = api.post("/v1/kill-switch", json={"engaged": False, "reason": "over"}, headers=admin)
    assert released.status_code == 200 and released.json()["engaged"] is False
    assert _post(api, two).status_code == 201
    r = api.post(f"/v1/proposals/{pending['id']}/decisions", json={"verdict": "approve"}, headers=lead)
    assert r.status_code == 201, r.text
    actions = [
        e["action"] for e in api.get("/v1/audit", params={"subject": "system"}, headers=admin).json()["items"]
    ]
    assert actions == ["kill_switch.released", "kill_switch.engaged"]
