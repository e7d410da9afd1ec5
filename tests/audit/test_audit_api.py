"""The audit trail over HTTP: the incremental check behind the Audit page, the full check as
a background job, and the public keys."""

import httpx

from backend.audit import checkpoints
from tests.support.env import CLIENT_ID
from tests.support.factories import AgentCreds, refund_proposal
from tests.support.servers import OidcProvider
from tests.support.webhook_receiver import eventually


def _auditor(oidc: OidcProvider) -> dict[str, str]:
    return {"Authorization": f"Bearer {oidc.id_token('audrey', ['auditor'], CLIENT_ID)}"}


def test_verify_answers_from_the_latest_checkpoint(
    api: httpx.Client, agent: AgentCreds, oidc: OidcProvider
) -> None:
    assert api.post("/v1/proposals", json=refund_proposal(10), headers=agent.headers).status_code == 201
    cp = checkpoints.checkpoint_now()
    assert cp is not None
    assert api.post("/v1/proposals", json=refund_proposal(11), headers=agent.headers).status_code == 201
    r = api.get("/v1/audit/verify", headers=_auditor(oidc))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["full"] is False and body["checkpoint"]["seq"] >= cp.seq
    assert body["checked"] == body["events"] - body["checkpoint"]["seq"]


def test_a_full_verify_runs_as_a_job(api: httpx.Client, agent: AgentCreds, oidc: OidcProvider) -> None:
    assert api.post("/v1/proposals", json=refund_proposal(12), headers=agent.headers).status_code == 201
    started = api.post("/v1/audit/verify/jobs", headers=_auditor(oidc))
    assert started.status_code == 202 and started.json()["status"] == "running", started.text
    job = eventually(
        lambda: (
            (j := api.get(f"/v1/audit/verify/jobs/{started.json()['id']}", headers=_auditor(oidc)).json())[
                "status"
            ]
            != "running"
            and j
        )
    )
    assert job and job["status"] == "done" and job["result"]["ok"] and job["result"]["full"], job
    assert api.post("/v1/audit/verify/jobs", headers=agent.headers).status_code in (401, 403)
    missing = api.get("/v1/audit/verify/jobs/01JZZZZZZZZZZZZZZZZZZZZZZZ", headers=_auditor(oidc))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"


def test_the_jwks_holds_public_keys_only(api: httpx.Client) -> None:
    keys = api.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" for k in keys)
    assert all("d" not in k for k in keys)
