"""Bad input gets the documented error and changes nothing."""

import base64
import json
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from backend.core.db import transaction
from models.agents import ApiKey
from models.common import new_id, utcnow
from models.proposals import Proposal
from tests.support.databases import Database
from tests.support.env import CLIENT_ID, server_env
from tests.support.factories import AgentCreds, make_agent, refund_proposal
from tests.support.servers import ApiServer, OidcProvider, free_port


def _error(r: httpx.Response, status: int, code: str, type_: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    if type_:
        assert err["type"] == type_
    assert set(err) >= {"type", "code", "message", "param"}
    return err


def _pending_count(api: httpx.Client, agent: AgentCreds, reviewer: dict[str, str]) -> int:
    return len(
        api.get("/v1/queue", params={"agent": agent.name, "limit": 200}, headers=reviewer).json()["items"]
    )


# --- agents' credentials -------------------------------------------------------


def test_missing_api_key(api: httpx.Client) -> None:
    r = api.post("/v1/proposals", json=refund_proposal())
    _error(r, 401, "missing_credentials", "authentication_error")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_api_key(api: httpx.Client) -> None:
    r = api.post("/v1/proposals", json=refund_proposal(), headers={"Authorization": "Bearer so_nope"})
    _error(r, 401, "invalid_api_key")


def test_expired_api_key(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    with transaction() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.agent_id == agent.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    _error(api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers), 401, "api_key_expired")
    assert _pending_count(api, agent, lead) == 0


def test_revoked_api_key(api: httpx.Client, agent: AgentCreds, admin: dict[str, str]) -> None:
    keys = api.get(f"/v1/agents/{agent.id}/keys", headers=admin).json()["items"]
    assert len(keys) == 1 and "key" not in keys[0] and "key_hash" not in keys[0]
    assert api.delete(f"/v1/agents/{agent.id}/keys/{keys[0]['id']}", headers=admin).status_code == 200
    _error(api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers), 401, "api_key_revoked")


def test_reviewer_token_is_not_an_api_key(api: httpx.Client, lead: dict[str, str]) -> None:
    _error(api.post("/v1/proposals", json=refund_proposal(), headers=lead), 401, "invalid_api_key")


def test_api_key_is_not_a_person(api: httpx.Client, agent: AgentCreds) -> None:
    _error(api.get("/v1/queue", headers=agent.headers), 403, "people_only", "permission_error")


# --- people's ID tokens --------------------------------------------------------


def _tamper(token: str, **claims: object) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_forged_token_is_refused(api: httpx.Client, oidc: OidcProvider) -> None:
    token = oidc.id_token("eve", ["reviewer"], CLIENT_ID)
    forged = _tamper(token, groups=["reviewer", "admin"])
    _error(api.get("/v1/agents", headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_signature")


def test_token_signed_by_another_key_is_refused(api: httpx.Client, oidc: OidcProvider) -> None:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    real = oidc.id_token("eve", ["reviewer"], CLIENT_ID)
    header = json.loads(base64.urlsafe_b64decode(real.split(".")[0] + "=="))
    key = RSAKey.generate_key(2048, parameters={"kid": header.get("kid", "k")})
    claims = {
        "iss": oidc.issuer,
        "aud": CLIENT_ID,
        "sub": "eve",
        "exp": int(time.time()) + 600,
        "groups": ["admin"],
    }
    # The real token's key id (if any): the key is known, the signature is not its.
    own = jwt.encode({"alg": "RS256", **{k: v for k, v in header.items() if k == "kid"}}, claims, key)
    _error(api.get("/v1/agents", headers={"Authorization": f"Bearer {own}"}), 401, "invalid_signature")


def test_token_for_another_audience_is_refused(api: httpx.Client, oidc: OidcProvider) -> None:
    token = oidc.id_token("eve", ["reviewer", "admin"], client_id="some-other-app")
    err = _error(api.get("/v1/agents", headers={"Authorization": f"Bearer {token}"}), 401, "wrong_audience")
    assert CLIENT_ID in err["message"]


def test_garbage_token_is_refused(api: httpx.Client) -> None:
    _error(api.get("/v1/queue", headers={"Authorization": "Bearer not.a.jwt"}), 401, "malformed_token")
    _error(api.get("/v1/queue", headers={"Authorization": "Basic abc"}), 401, "invalid_authorization_header")


def test_expired_token_is_refused(db: Database) -> None:
    short = OidcProvider(free_port(), token_max_age=1)
    try:
        server = ApiServer(server_env(db, short.issuer, SIGNOFF_OIDC_LEEWAY_SECONDS="0"))
        try:
            token = short.id_token("lead", ["reviewer"], CLIENT_ID)
            payload = token.split(".")[1]
            exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
            time.sleep(max(0.0, exp - time.time()) + 1.1)
            r = httpx.get(f"{server.url}/v1/queue", headers={"Authorization": f"Bearer {token}"})
            _error(r, 401, "token_expired")
        finally:
            server.close()
    finally:
        short.close()


def test_user_without_roles_cannot_review(api: httpx.Client, oidc: OidcProvider) -> None:
    token = oidc.id_token("nobody", [], CLIENT_ID)
    _error(api.get("/v1/queue", headers={"Authorization": f"Bearer {token}"}), 403, "not_a_reviewer")


def test_reviewer_is_not_admin(api: httpx.Client, lead: dict[str, str]) -> None:
    _error(api.get("/v1/agents", headers=lead), 403, "not_an_admin")
    _error(api.get("/v1/audit", headers=lead), 403, "not_an_auditor")


# --- bodies ---------------------------------------------------------------------


def test_payload_failing_schema(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    body = refund_proposal()
    body["payload"]["amount_usd"] = 0
    err = _error(api.post("/v1/proposals", json=body, headers=agent.headers), 422, "invalid_payload")
    assert err["param"] == "payload.amount_usd"
    del body["payload"]["currency"]
    body["payload"]["amount_usd"] = 10
    err = _error(api.post("/v1/proposals", json=body, headers=agent.headers), 422, "invalid_payload")
    assert err["param"] == "payload.currency"
    assert _pending_count(api, agent, lead) == 0


def test_unknown_action_type(api: httpx.Client, agent: AgentCreds) -> None:
    err = _error(
        api.post("/v1/proposals", json=refund_proposal(action_type="launch_missiles"), headers=agent.headers),
        422,
        "unknown_action_type",
    )
    assert err["param"] == "action_type"


def test_action_type_not_granted(api: httpx.Client, db: Database, admin: dict[str, str]) -> None:
    bare = make_agent(grants=())
    err = _error(
        api.post("/v1/proposals", json=refund_proposal(), headers=bare.headers), 403, "action_not_allowed"
    )
    assert err["param"] == "action_type"
    events = api.get(
        "/v1/audit", params={"subject": f"agent:{bare.id}", "action": "proposal.refused"}, headers=admin
    ).json()["items"]
    assert len(events) == 1 and events[0]["data"]["code"] == "action_not_allowed"


def test_unknown_field_and_wrong_type(api: httpx.Client, agent: AgentCreds) -> None:
    err = _error(
        api.post("/v1/proposals", json={**refund_proposal(), "colour": "red"}, headers=agent.headers),
        422,
        "unknown_field",
    )
    assert err["param"] == "colour"
    err = _error(
        api.post("/v1/proposals", json={**refund_proposal(), "evidence": "lots"}, headers=agent.headers),
        422,
        "invalid_request",
    )
    assert err["param"] == "evidence"


def test_body_over_one_mebibyte(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    body = refund_proposal()
    body["evidence"][0]["content"] = "x" * (1024 * 1024 + 1)
    _error(api.post("/v1/proposals", json=body, headers=agent.headers), 413, "request_too_large")
    assert _pending_count(api, agent, lead) == 0


def test_chunked_body_over_limit(api: httpx.Client, agent: AgentCreds) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"action_type": "refund", "summary": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    r = api.post(
        "/v1/proposals", content=chunks(), headers={**agent.headers, "Content-Type": "application/json"}
    )
    _error(r, 413, "request_too_large")


def test_malformed_json(api: httpx.Client, agent: AgentCreds) -> None:
    r = api.post(
        "/v1/proposals",
        content=b'{"action_type": ',
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    _error(r, 400, "invalid_json", "invalid_request_error")


@pytest.mark.parametrize("path", ["/v1/proposals/not-an-id", "/v1/proposals/01ARZ3NDEKTSV4RRFFQ69G5FA%27"])
def test_bad_id(api: httpx.Client, agent: AgentCreds, path: str) -> None:
    assert api.get(path, headers=agent.headers).status_code == 422


def test_unknown_id_and_someone_elses_proposal(api: httpx.Client, agent: AgentCreds, db: Database) -> None:
    _error(
        api.get(f"/v1/proposals/{new_id()}", headers=agent.headers),
        404,
        "resource_missing",
        "not_found_error",
    )
    other = make_agent()
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=other.headers).json()["id"]
    _error(api.get(f"/v1/proposals/{pid}", headers=agent.headers), 404, "resource_missing")
    _error(api.post(f"/v1/proposals/{pid}/cancel", headers=agent.headers), 404, "resource_missing")


# --- decisions --------------------------------------------------------------------


def test_decision_on_decided_proposal(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    assert (
        api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lead).status_code
        == 201
    )
    err = _error(
        api.post(
            f"/v1/proposals/{pid}/decisions",
            json={"verdict": "reject", "reason_codes": ["duplicate"]},
            headers=lead,
        ),
        409,
        "already_decided",
        "conflict_error",
    )
    assert err["status"] == "approved"


def test_decision_on_expired_proposal(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    with transaction() as session:
        session.execute(
            update(Proposal).where(Proposal.id == pid).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lead)
    assert r.status_code == 409 and r.json()["error"]["code"] in {"proposal_expired", "already_decided"}
    state = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    # The refund's on_expiry is "reject" (the default): silence is a refusal, by the system.
    assert state["status"] == "rejected"
    assert [(d["decided_by"], d["reason_codes"]) for d in state["decisions"]] == [("system", ["expired"])]


def test_reject_needs_a_known_reason(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    pid = api.post("/v1/proposals", json=refund_proposal(), headers=agent.headers).json()["id"]
    url = f"/v1/proposals/{pid}/decisions"
    _error(api.post(url, json={"verdict": "reject"}, headers=lead), 422, "reason_required")
    err = _error(
        api.post(url, json={"verdict": "reject", "reason_codes": ["vibes"]}, headers=lead),
        422,
        "unknown_reason_code",
    )
    assert "wrong_amount" in err["valid"]
    _error(
        api.post(url, json={"verdict": "reject", "reason_codes": ["other"]}, headers=lead),
        422,
        "comment_required",
    )
    _error(api.post(url, json={"verdict": "maybe"}, headers=lead), 422, "invalid_request")
    assert api.get(f"/v1/proposals/{pid}", headers=lead).json()["status"] == "pending"


def test_edit_must_pass_the_schema(api: httpx.Client, agent: AgentCreds, lead: dict[str, str]) -> None:
    body = refund_proposal(80)
    pid = api.post("/v1/proposals", json=body, headers=agent.headers).json()["id"]
    bad_edit = {**body["payload"], "amount_usd": "eighty"}
    err = _error(
        api.post(
            f"/v1/proposals/{pid}/decisions",
            json={"verdict": "approve", "edited_payload": bad_edit},
            headers=lead,
        ),
        422,
        "invalid_payload",
    )
    assert err["param"] == "edited_payload.amount_usd"
    good_edit = {**body["payload"], "amount_usd": 60}
    r = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "edited_payload": good_edit, "comment": "partial refund"},
        headers=lead,
    )
    assert r.status_code == 201
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["payload"]["amount_usd"] == 60
    original = api.get(f"/v1/proposals/{pid}", headers=agent.headers).json()
    assert original["payload"]["amount_usd"] == 80  # the original stays
