"""Approval receipts: signed with EdDSA, checkable with any JOSE library against the JWKS,
refused by the SDK when anything about them is off, and good for one execution."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from joserfc import jwt
from sqlalchemy import select, text

import signoff
from backend.core import keys as key_ring
from backend.core.canonical import sha256_hex
from backend.core.db import get_engine, read_session
from backend.core.settings import Settings
from backend.proposals import receipts
from models.agents import Dial
from models.receipts import Receipt
from signoff.receipts import verify_receipt
from tests.support.factories import (
    AgentCreds,
    make_action_type,
    make_agent,
    person,
    refund_payload,
    refund_proposal,
)
from tests.support.servers import ApiServer, OidcProvider

CLAIMS = {"sub", "act", "payload_sha256", "approvers", "policy_version", "iat", "exp", "jti"}


def _approved(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str], amount: float = 150
) -> tuple[str, dict]:
    r = api.post("/v1/proposals", json=refund_proposal(amount), headers=agent.headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    d = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lead)
    assert d.status_code == 201, d.text
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["status"] == "approved" and state["receipt"], state
    return pid, state


def test_a_receipt_verifies_with_a_generic_jose_library_against_the_jwks(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid, state = _approved(api, agent, lead)
    jwks = api.get("/.well-known/jwks.json").json()
    # authlib, not the library that signed it, with nothing but the published key set.
    token = JsonWebToken(["EdDSA"]).decode(state["receipt"], JsonWebKey.import_key_set(jwks))
    assert token.header["alg"] == "EdDSA" and token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert set(token) == CLAIMS
    canonical = json.dumps(state["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert token["payload_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert (token["sub"], token["act"], token["approvers"]) == (pid, "refund", ["lead"])
    assert token["exp"] > token["iat"]


def test_the_sdk_refuses_a_changed_payload_an_expired_receipt_another_proposal_and_reuse(
    server: ApiServer, api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid, state = _approved(api, agent, lead)
    other, _ = _approved(api, agent, lead, 160)
    jwks = api.get("/.well-known/jwks.json").json()
    claims = verify_receipt(state["receipt"], jwks, proposal_id=pid, payload=state["payload"])
    one_byte = {**state["payload"], "order_id": state["payload"]["order_id"][:-1] + "X"}
    with pytest.raises(signoff.ReceiptInvalid, match="payload"):
        verify_receipt(state["receipt"], jwks, proposal_id=pid, payload=one_byte)
    with pytest.raises(signoff.ReceiptInvalid, match="expired"):
        verify_receipt(state["receipt"], jwks, proposal_id=pid, now=claims["exp"] + 3600)
    with pytest.raises(signoff.ReceiptInvalid, match="another proposal"):
        verify_receipt(state["receipt"], jwks, proposal_id=other)
    forged = state["receipt"][:-4] + ("AAAA" if not state["receipt"].endswith("AAAA") else "BBBB")
    with pytest.raises(signoff.ReceiptInvalid, match="signature"):
        verify_receipt(forged, jwks, proposal_id=pid)
    with signoff.Client(server.url, agent.key) as client:
        decision = client.decision(pid)
        assert client.check_receipt(decision)["jti"] == claims["jti"]
        with pytest.raises(signoff.ReceiptInvalid, match="already used"):
            client.check_receipt(decision)


def test_a_receipt_is_good_for_one_execution(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    first, first_state = _approved(api, agent, lead)
    second, second_state = _approved(api, agent, lead, 170)
    jti = verify_receipt(first_state["receipt"], api.get("/.well-known/jwks.json").json())["jti"]
    report = {"status": "succeeded", "result": {"refund_id": "re_1"}, "receipt_jti": jti}
    assert api.post(f"/v1/proposals/{first}/execution", json=report, headers=agent.headers).status_code == 201
    # The same report again is a replay, not a second use.
    assert api.post(f"/v1/proposals/{first}/execution", json=report, headers=agent.headers).status_code == 200
    reused = api.post(f"/v1/proposals/{second}/execution", json=report, headers=agent.headers)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "receipt_used", reused.text
    unknown = api.post(
        f"/v1/proposals/{second}/execution",
        json={**report, "receipt_jti": "01JZZZZZZZZZZZZZZZZZZZZZZZ"},
        headers=agent.headers,
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "receipt_jti"
    own = verify_receipt(second_state["receipt"], api.get("/.well-known/jwks.json").json())["jti"]
    ok = api.post(
        f"/v1/proposals/{second}/execution", json={**report, "receipt_jti": own}, headers=agent.headers
    )
    assert ok.status_code == 201, ok.text


def test_a_two_approver_action_type_gets_its_receipt_only_at_the_second_approval(
    api: httpx.Client, oidc: OidcProvider, lead: dict[str, str]
) -> None:
    four_eyes = make_action_type(approvals_required=2)
    agent = make_agent(grants=(four_eyes,))
    lena = person(oidc, "lena", ["reviewer", "support_refunds"], "Lena Lead")
    payload = refund_payload(150)
    body = {**refund_proposal(150, action_type=four_eyes), "payload": payload}
    r = api.post("/v1/proposals", json=body, headers=agent.headers)
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    pid = r.json()["id"]

    def receipt_rows() -> list[Receipt]:
        with read_session() as session:
            return list(session.scalars(select(Receipt).where(Receipt.proposal_id == pid)))

    # The first approval edits the amount down: it counts, and what is signed is the edit.
    edited = {**payload, "amount_usd": 120.0}
    first = api.post(
        f"/v1/proposals/{pid}/decisions",
        json={"verdict": "approve", "edited_payload": edited, "comment": "partial refund"},
        headers=lead,
    )
    assert first.status_code == 201, first.text
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["status"] == "pending" and state["receipt"] is None, state
    assert receipt_rows() == []
    second = api.post(f"/v1/proposals/{pid}/decisions", json={"verdict": "approve"}, headers=lena)
    assert second.status_code == 201, second.text
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["status"] == "approved" and state["payload"] == edited, state
    claims = verify_receipt(
        state["receipt"], api.get("/.well-known/jwks.json").json(), proposal_id=pid, payload=edited
    )
    assert claims["approvers"] == ["lead", "lena"] and claims["act"] == four_eyes
    assert claims["payload_sha256"] == sha256_hex(edited)
    (row,) = receipt_rows()
    assert row.jti == claims["jti"]


def test_policy_approval_in_execute_mode_carries_a_policy_receipt(api: httpx.Client, db: object) -> None:
    auto = make_agent(dials={"refund": Dial.execute})
    r = api.post("/v1/proposals", json=refund_proposal(20), headers=auto.headers)
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    state = api.get(f"/v1/proposals/{r.json()['id']}/decision", headers=auto.headers).json()
    claims = verify_receipt(
        state["receipt"],
        api.get("/.well-known/jwks.json").json(),
        proposal_id=r.json()["id"],
        payload=state["payload"],
    )
    assert claims["approvers"] == ["policy"]


def test_the_decorator_refuses_a_payload_changed_in_the_database_and_never_runs_the_tool(
    server: ApiServer, api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    ran: list[dict] = []
    with signoff.Client(server.url, agent.key, backoff=0.05) as client:

        @signoff.require_approval("refund", client=client, timeout=30)
        def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> dict:
            ran.append({"amount_usd": amount_usd})
            return {"refund_id": "re_x"}

        payload = refund_payload(180)
        with signoff.task("receipt-tamper"):
            handle = client.propose("refund", payload, summary="refund", task_id="receipt-tamper")
        assert (
            api.post(
                f"/v1/proposals/{handle.id}/decisions", json={"verdict": "approve"}, headers=lead
            ).status_code
            == 201
        )
        tamper = text("UPDATE proposals SET payload = :p WHERE id = :id")
        with get_engine().begin() as conn:  # someone with database access raises the amount
            conn.execute(tamper, {"p": json.dumps({**payload, "amount_usd": 9000.0}), "id": handle.id})
        try:
            with signoff.task("receipt-tamper"), pytest.raises(signoff.ReceiptInvalid, match="payload"):
                refund(**payload)
        finally:  # put it back: the session's database must still verify for later tests
            with get_engine().begin() as conn:
                conn.execute(tamper, {"p": json.dumps(payload), "id": handle.id})
    assert ran == []


def test_rotated_keys_keep_verifying_old_receipts(tmp_path: Path) -> None:
    old_pem, new_pem = key_ring.new_signing_pem(), key_ring.new_signing_pem()
    (tmp_path / "old.pem").write_bytes(old_pem)
    (tmp_path / "new.pem").write_bytes(new_pem)
    base = {"key_dir": str(tmp_path / "keys")}
    before = key_ring.load(Settings(**base, signing_key_file=str(tmp_path / "old.pem")))
    after = key_ring.load(
        Settings(
            **base,
            signing_key_file=str(tmp_path / "new.pem"),
            retired_signing_key_files=str(tmp_path / "old.pem"),
        )
    )
    assert after.kid != before.kid
    assert [k["kid"] for k in after.jwks()["keys"]] == [after.kid, before.kid]
    assert all("d" not in k for k in after.jwks()["keys"])  # public halves only
    old_receipt = jwt.encode(
        {"alg": "EdDSA", "kid": before.kid},
        {"sub": "p", "exp": 2**40, "jti": "j"},
        before.signing,
        algorithms=["EdDSA"],
    )
    assert verify_receipt(old_receipt, after.jwks(), proposal_id="p")["jti"] == "j"
    with pytest.raises(signoff.ReceiptInvalid):
        verify_receipt(
            old_receipt, {"keys": after.jwks()["keys"][:1]}, proposal_id="p"
        )  # retired key dropped


def test_receipts_module_signs_what_it_is_given() -> None:
    issued = receipts.issue("01JAAAAAAAAAAAAAAAAAAAAAAA", "refund", {"b": "é", "a": 1}, [], 3)
    claims = verify_receipt(issued.row["token"], key_ring.get_keys().jwks(), payload={"a": 1, "b": "é"})
    assert claims["approvers"] == ["policy"] and claims["policy_version"] == 3
    assert claims["payload_sha256"] == hashlib.sha256('{"a":1,"b":"é"}'.encode()).hexdigest()


def test_the_cli_verifies_a_receipt_offline(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str], tmp_path: Path
) -> None:
    pid, state = _approved(api, agent, lead, 190)
    (tmp_path / "jwks.json").write_text(api.get("/.well-known/jwks.json").text)
    (tmp_path / "payload.json").write_text(json.dumps(state["payload"]))
    (tmp_path / "changed.json").write_text(json.dumps({**state["payload"], "amount_usd": 191}))
    (tmp_path / "receipt.jws").write_text(state["receipt"])

    def cli(payload: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", "receipt", "verify", f"@{tmp_path / 'receipt.jws'}"]
            + [
                "--jwks",
                str(tmp_path / "jwks.json"),
                "--payload",
                str(tmp_path / payload),
                "--proposal",
                pid,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = cli("payload.json")
    assert good.returncode == 0 and pid in good.stdout, good.stderr
    bad = cli("changed.json")
    assert bad.returncode == 1 and "payload is not the one approved" in bad.stderr
    assert "Traceback" not in bad.stderr
