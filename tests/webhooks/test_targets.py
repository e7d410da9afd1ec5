"""Webhooks cannot be turned against the network they run in; their secrets are sealed."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from backend.core.db import get_engine, transaction
from backend.core.errors import ApiError
from backend.webhooks import secrets, service, targets
from models.webhooks import WebhookCreate
from tests.support.factories import AgentCreds, refund_proposal
from tests.support.webhook_receiver import Receiver, eventually

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service (link-local)
    "http://10.0.0.1/hook",  # private
    "http://127.0.0.1:5432/",  # the database port on loopback
    "http://[::1]/hook",  # IPv6 loopback
    "http://0.0.0.0:8000/hook",  # unspecified: reaches the host itself
    "http://localhost:8000/hook",  # a name that resolves to loopback
    "http://[::ffff:127.0.0.1]/hook",  # loopback, IPv4-mapped
    "http://100.64.0.1/hook",  # shared address space
    "https://[fd00:ec2::254]/",  # the IPv6 metadata address (unique local)
]


_CREATED: list[str] = []


@pytest.fixture
def cleanup(db: object) -> Iterator[None]:
    """Endpoints a test registered in process are deleted after it, so they stop collecting
    the session database's events (other tests count deliveries and timeline items)."""
    yield
    while _CREATED:
        with transaction() as session:
            service.delete(session, _CREATED.pop(), "user:ada")


def _create(url: str) -> dict:
    with transaction() as session:
        body = WebhookCreate(url=url, event_types=["proposal.created"])
        created = service.create(session, body, "user:ada")
    _CREATED.append(created["id"])
    return created


@pytest.mark.parametrize("url", REFUSED)
def test_registration_refuses_internal_targets(
    url: str, cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNOFF_WEBHOOK_ALLOWLIST", raising=False)
    with pytest.raises(ApiError) as refused:
        _create(url)
    assert (refused.value.status, refused.value.code, refused.value.param) == (422, "unsafe_url", "url")


def test_an_allow_listed_target_is_accepted_and_only_that_one(
    cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_WEBHOOK_ALLOWLIST", "127.0.0.1:5432, 10.1.0.0/16")
    assert _create("http://127.0.0.1:5432/")["url"] == "http://127.0.0.1:5432/"
    assert _create("http://10.1.2.3/hook")["url"] == "http://10.1.2.3/hook"
    for still_refused in ("http://127.0.0.1:6379/", "http://10.2.0.1/", "http://169.254.169.254/"):
        with pytest.raises(ApiError):
            _create(still_refused)


def test_the_api_refuses_the_metadata_address(api: httpx.Client, admin: dict[str, str]) -> None:
    r = api.post(
        "/v1/webhooks",
        json={"url": "http://169.254.169.254/latest", "event_types": ["proposal.created"]},
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsafe_url", r.text
    assert "Traceback" not in r.text


def test_secrets_are_not_readable_in_the_database(cleanup: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_WEBHOOK_ALLOWLIST", "127.0.0.1")
    created = _create("http://127.0.0.1:9/hook")
    with get_engine().connect() as conn:
        stored = conn.execute(
            text("SELECT secret FROM webhook_endpoints WHERE id = :i"), {"i": created["id"]}
        ).scalar_one()
    plaintext = created["secret"]
    assert plaintext.startswith("whsec_") and plaintext not in stored and plaintext[6:] not in stored
    assert stored.startswith(secrets.SEALED) and secrets.unseal(stored) == plaintext


def test_delivery_pins_the_checked_address() -> None:
    target = targets.check("http://127.0.0.1:8080/a?b=1", targets.parse_allowlist("127.0.0.1"))
    url, host, extensions = targets.pinned_request(target)
    assert (url, host, extensions) == ("http://127.0.0.1:8080/a?b=1", {"host": "127.0.0.1:8080"}, {})
    named = targets.Target(
        "https://hooks.example.com/x",
        "https",
        "hooks.example.com",
        443,
        (targets.ipaddress.ip_address("93.184.216.34"),),
    )
    url, host, extensions = targets.pinned_request(named)
    assert url == "https://93.184.216.34:443/x" and host == {"host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def test_a_redirect_to_loopback_is_not_followed(
    api: httpx.Client, admin: dict[str, str], agent: AgentCreds, receivers: list[Receiver]
) -> None:
    inside = Receiver()
    receivers.append(inside)
    redirector = Receiver(default=(302, {}, {"location": inside.url}))
    receivers.append(redirector)
    hook = api.post(
        "/v1/webhooks", json={"url": redirector.url, "event_types": ["proposal.created"]}, headers=admin
    ).json()
    try:
        assert api.post("/v1/proposals", json=refund_proposal(30), headers=agent.headers).status_code == 201
        seen = eventually(
            lambda: [
                d
                for d in api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin).json()["items"]
                if d["attempts"]
            ]
        )
        assert seen and "redirects are not followed" in (seen[0]["last_error"] or ""), seen
        assert inside.requests == []
    finally:
        api.delete(f"/v1/webhooks/{hook['id']}", headers=admin)
