"""Webhook delivery across API replicas (each message sent once) and giving up after the window."""

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import Database
from tests.support.env import CLIENT_ID, server_env
from tests.support.factories import make_agent, refund_proposal
from tests.support.servers import OidcProvider, api_server
from tests.support.webhook_receiver import Receiver, eventually


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _admin(oidc: OidcProvider) -> dict[str, str]:
    return {"Authorization": f"Bearer {oidc.id_token('ada', ['admin'], CLIENT_ID)}"}


def test_two_replicas_send_each_delivery_once(
    fresh_database: Database, oidc: OidcProvider, receiver: Receiver
) -> None:
    env = server_env(fresh_database, oidc.issuer, SIGNOFF_WEBHOOK_POLL_SECONDS="0.05")
    agent = make_agent()
    with api_server(env) as one, api_server(env) as two:
        hook = {"url": receiver.url, "event_types": ["proposal.created"]}
        assert httpx.post(f"{one.url}/v1/webhooks", json=hook, headers=_admin(oidc)).status_code == 201
        for i in range(20):
            target = (one, two)[i % 2]
            r = httpx.post(f"{target.url}/v1/proposals", json=refund_proposal(150), headers=agent.headers)
            assert r.status_code == 201, r.text
        assert eventually(lambda: len(receiver.requests) >= 20)
        # Both replicas' workers were polling the same table; give a duplicate time to show up.
        eventually(lambda: len(receiver.requests) > 20, timeout=1.0)
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 20 and set(ids.values()) == {1}


def test_a_delivery_that_keeps_failing_is_given_up(fresh_database: Database, oidc: OidcProvider) -> None:
    failing = Receiver(default=500)
    env = server_env(fresh_database, oidc.issuer, SIGNOFF_WEBHOOK_RETRY_HOURS="0.0003")  # about 1 s
    agent = make_agent()
    try:
        with api_server(env) as srv, httpx.Client(base_url=srv.url, headers=_admin(oidc)) as admin:
            hook_id = admin.post(
                "/v1/webhooks", json={"url": failing.url, "event_types": ["proposal.created"]}
            ).json()["id"]
            httpx.post(f"{srv.url}/v1/proposals", json=refund_proposal(150), headers=agent.headers)
            (item,) = eventually(
                lambda: [
                    d
                    for d in admin.get(f"/v1/webhooks/{hook_id}/deliveries").json()["items"]
                    if d["status"] == "failed"
                ]
            )
            assert (
                item["attempts"] >= 2 and item["last_status_code"] == 500 and item["next_attempt_at"] is None
            )
            attempts = len(failing.requests)
            assert attempts == item["attempts"]
            # Redelivery gives it another go, with the same message id.
            assert admin.post(f"/v1/webhooks/deliveries/{item['id']}/redeliver").status_code == 202
            assert eventually(lambda: len(failing.requests) > attempts)
            assert failing.requests[-1].headers["webhook-id"] == item["id"]
    finally:
        failing.close()
