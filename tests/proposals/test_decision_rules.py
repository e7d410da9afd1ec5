"""Decisions that mean what the rule says: quorum, separation of duties, claims, edits, bulk."""

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from backend.core.canonical import sha256_hex
from backend.core.db import read_session
from models.audit import AuditEvent
from models.proposals import Decision
from tests.support.factories import (
    AgentCreds,
    apply_policy,
    default_policy_text,
    make_action_type,
    make_agent,
    person,
    refund_proposal,
)
from tests.support.servers import OidcProvider

APPROVE = {"verdict": "approve"}


@pytest.fixture(autouse=True)
def _leave_no_pending(db: Any) -> Iterator[None]:
    """Proposals of this module's own action types left pending are cancelled afterwards
    (audited), so other tests' queue counts see only what they expect."""
    yield
    from backend.core.db import transaction
    from backend.proposals import transitions
    from models.audit import AuditAction
    from models.proposals import Proposal, Status

    with transaction() as session:
        left = session.exec(
            select(Proposal.id).where(
                Proposal.status == Status.pending.value,
                Proposal.action_type.like("refund\\_%", escape="\\"),  # type: ignore[attr-defined]
            )
        ).all()
        for pid in left:
            transitions.leave_pending(
                session,
                pid,
                Status.cancelled,
                actor="system:test",
                action=AuditAction.PROPOSAL_CANCELLED,
                data={},
            )


@pytest.fixture
def lead2(oidc: OidcProvider) -> dict[str, str]:
    """A second support lead, for the second pair of eyes."""
    return person(oidc, "lena", ["reviewer", "support_refunds"], "Lena Lead")


def _propose(api: httpx.Client, agent: AgentCreds, action_type: str, amount: float = 150.0) -> str:
    r = api.post(
        "/v1/proposals", json=refund_proposal(amount, action_type=action_type), headers=agent.headers
    )
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    return str(r.json()["id"])


def _decide(
    api: httpx.Client, pid: str, who: dict[str, str], body: dict[str, Any] | None = None
) -> httpx.Response:
    return api.post(f"/v1/proposals/{pid}/decisions", json=body or APPROVE, headers=who)


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, r.text
    return error


def view_payload(view: dict[str, Any]) -> dict[str, Any]:
    """The effective payload of a proposal view: the latest approver's edit, else its own."""
    edits = [d["edited_payload"] for d in view["decisions"] if d["edited_payload"] is not None]
    return edits[-1] if edits else view["payload"]


def _events(pid: str, action: str) -> list[AuditEvent]:
    with read_session() as session:
        return list(
            session.exec(
                select(AuditEvent)
                .where(AuditEvent.subject == f"proposal:{pid}", AuditEvent.action == action)
                .order_by(AuditEvent.seq)  # type: ignore[arg-type]
            ).all()
        )


def test_two_approvals_are_needed_and_the_agent_waits_for_both(
    api: httpx.Client, lead: dict[str, str], lead2: dict[str, str]
) -> None:
    four_eyes = make_action_type(approvals_required=2)
    agent = make_agent(grants=(four_eyes,))
    pid = _propose(api, agent, four_eyes)
    assert _decide(api, pid, lead).status_code == 201
    view = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert view["status"] == "pending" and view["approvals_required"] == 2
    assert [a["reviewer"] for a in view["approvals"]] == ["lead"]
    queued = api.get("/v1/queue", params={"agent": agent.name}, headers=lead).json()["items"]
    assert [(i["approvals"], i["approvals_required"]) for i in queued] == [(1, 2)]
    _error(_decide(api, pid, lead), 409, "already_approved")

    waited: dict[str, Any] = {}

    def wait() -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            r = client.get(f"/v1/proposals/{pid}/decision", params={"wait": 20}, headers=agent.headers)
            waited.update(r.json())

    waiter = threading.Thread(target=wait)
    waiter.start()
    # One approval does not end the wait: a short poll still sees it pending.
    state = api.get(f"/v1/proposals/{pid}/decision", params={"wait": 0.5}, headers=agent.headers).json()
    assert state["status"] == "pending" and state["decided"] is False and not waited
    assert _decide(api, pid, lead2).status_code == 201
    waiter.join(25)
    assert waited["status"] == "approved" and waited["decided"] is True
    view = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert view["status"] == "approved" and [a["reviewer"] for a in view["approvals"]] == ["lead", "lena"]
    assert [e.data["approvals"] for e in _events(pid, "decision.recorded")] == [1]
    assert len(_events(pid, "proposal.decided")) == 1

    # A rejection after one approval ends the proposal.
    other = _propose(api, agent, four_eyes)
    assert _decide(api, other, lead).status_code == 201
    r = _decide(api, other, lead2, {"verdict": "reject", "reason_codes": ["wrong_amount"]})
    assert r.status_code == 201
    state = api.get(f"/v1/proposals/{other}/decision", headers=agent.headers).json()
    assert state["status"] == "rejected" and state["decision"]["verdict"] == "reject"


def test_an_edit_restarts_the_count_and_stale_views_are_refused(
    api: httpx.Client, oidc: OidcProvider, lead: dict[str, str], lead2: dict[str, str]
) -> None:
    four_eyes = make_action_type(approvals_required=2)
    agent = make_agent(grants=(four_eyes,))
    third = person(oidc, "tess", ["reviewer", "support_refunds"])
    pid = _propose(api, agent, four_eyes, 300)
    seen = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert (
        _decide(api, pid, lead, {**APPROVE, "seen_payload_sha256": seen["payload_sha256"]}).status_code == 201
    )
    # The second approver lowers the amount: the count restarts at their approval.
    edited = {**seen["payload"], "amount_usd": 250.0}
    r = _decide(api, pid, lead2, {**APPROVE, "edited_payload": edited, "comment": "partial refund"})
    assert r.status_code == 201
    view = api.get(f"/v1/proposals/{pid}", headers=lead).json()
    assert view["status"] == "pending" and [a["reviewer"] for a in view["approvals"]] == ["lena"]
    assert view["payload_sha256"] != seen["payload_sha256"]
    (item,) = api.get("/v1/queue", params={"agent": agent.name}, headers=lead).json()["items"]
    assert item["payload_sha256"] == view["payload_sha256"] == sha256_hex(view_payload(view))
    # The first approver approved the old payload; with separation of duties on, not again.
    _error(_decide(api, pid, lead), 403, "separation_of_duties")
    # A third reviewer who read the proposal before the edit is told the view is stale.
    error = _error(
        _decide(api, pid, third, {**APPROVE, "seen_payload_sha256": seen["payload_sha256"]}),
        409,
        "stale_view",
    )
    assert error["payload_sha256"] == view["payload_sha256"]
    assert (
        _decide(api, pid, third, {**APPROVE, "seen_payload_sha256": view["payload_sha256"]}).status_code
        == 201
    )
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["status"] == "approved" and state["payload"]["amount_usd"] == 250.0


def test_policy_raises_the_quorum_for_large_amounts(
    api: httpx.Client, lead: dict[str, str], lead2: dict[str, str]
) -> None:
    name = make_action_type()
    agent = make_agent(grants=(name,))
    rule = (
        f'\n@id("four-eyes-over-1000")\n@approvals_required("2")\n'
        f'permit (principal, action == Action::"quorum", resource == ActionType::"{name}")\n'
        'when { context.payload.amount_usd.greaterThan(decimal("1000.00")) };\n'
    )
    apply_policy(default_policy_text() + rule)
    try:
        small, large = _propose(api, agent, name, 500), _propose(api, agent, name, 1500)
        assert api.get(f"/v1/proposals/{small}", headers=lead).json()["approvals_required"] == 1
        assert api.get(f"/v1/proposals/{large}", headers=lead).json()["approvals_required"] == 2
        assert _decide(api, small, lead).status_code == 201
        assert _decide(api, large, lead).status_code == 201
        assert api.get(f"/v1/proposals/{small}", headers=lead).json()["status"] == "approved"
        assert api.get(f"/v1/proposals/{large}", headers=lead).json()["status"] == "pending"
        assert _decide(api, large, lead2).status_code == 201
        assert api.get(f"/v1/proposals/{large}", headers=lead).json()["status"] == "approved"
    finally:
        apply_policy(default_policy_text())


def _agent_by(api: httpx.Client, creator: dict[str, str], action_type: str, owner: str = "") -> AgentCreds:
    name = f"agent-{uuid.uuid4().hex[:10]}"
    r = api.post("/v1/agents", json={"name": name, "owner": owner, "grants": [action_type]}, headers=creator)
    assert r.status_code == 201, r.text
    agent_id = r.json()["id"]
    key = api.post(f"/v1/agents/{agent_id}/keys", json={}, headers=creator).json()["key"]
    return AgentCreds(agent_id, name, key)


def test_separation_of_duties(
    api: httpx.Client, oidc: OidcProvider, admin: dict[str, str], lead: dict[str, str], lead2: dict[str, str]
) -> None:
    name = make_action_type()
    boss = person(oidc, "boss", ["admin", "reviewer", "support_refunds"])
    cases = {
        "agent_owner": (_agent_by(api, admin, name, owner="lead"), lead),
        "agent_creator": (_agent_by(api, boss, name), boss),
    }
    granted = make_agent(grants=())
    assert (
        api.put(f"/v1/agents/{granted.id}/dials/{name}", json={"mode": "approve"}, headers=boss).status_code
        == 200
    )
    cases["grant_giver"] = (granted, boss)
    for rule, (agent, who) in cases.items():
        pid = _propose(api, agent, name)
        error = _error(_decide(api, pid, who), 403, "separation_of_duties")
        assert error["rule"] == rule
        (refused,) = _events(pid, "decision.refused")
        assert refused.data["code"] == "separation_of_duties" and refused.data["rule"] == rule
        assert api.get(f"/v1/proposals/{pid}", headers=lead).json()["status"] == "pending"
        assert _decide(api, pid, lead2).status_code == 201  # someone else may
    # Turned off for an action type, the owner may approve.
    lax = make_action_type(separation_of_duties=False)
    pid = _propose(api, _agent_by(api, admin, lax, owner="lead"), lax)
    assert _decide(api, pid, lead).status_code == 201


def test_a_claim_held_by_another_is_409_until_an_admin_breaks_it(
    api: httpx.Client, agent: AgentCreds, admin: dict[str, str], lead: dict[str, str], lead2: dict[str, str]
) -> None:
    pid = _propose(api, agent, "refund")
    assert api.post(f"/v1/proposals/{pid}/claim", headers=lead).status_code == 200
    _error(_decide(api, pid, lead2), 409, "claimed")
    _error(api.delete(f"/v1/proposals/{pid}/claim", headers=admin), 409, "claimed")
    assert (
        api.delete(f"/v1/proposals/{pid}/claim", params={"force": "true"}, headers=admin).status_code == 204
    )
    (broken,) = _events(pid, "proposal.released")
    assert broken.actor == "user:ada" and broken.data == {"forced": True, "held_by": "lead"}
    assert _decide(api, pid, lead2).status_code == 201


def test_edits_stay_within_the_action_types_limits(
    api: httpx.Client, agent: AgentCreds, lead: dict[str, str]
) -> None:
    pid = _propose(api, agent, "refund", 150)
    payload = api.get(f"/v1/proposals/{pid}", headers=lead).json()["payload"]
    why = {"reason_codes": ["wrong_amount"]}
    redirect = {**APPROVE, **why, "edited_payload": {**payload, "customer_id": "cus_evil"}}
    error = _error(_decide(api, pid, lead, redirect), 422, "field_not_editable")
    assert error["param"] == "edited_payload.customer_id"
    error = _error(
        _decide(api, pid, lead, {**APPROVE, **why, "edited_payload": {**payload, "order_id": "o"}}),
        422,
        "field_not_editable",
    )
    assert error["param"] == "edited_payload.order_id"
    upward = {**APPROVE, **why, "edited_payload": {**payload, "amount_usd": 151.0}}
    assert (
        _error(_decide(api, pid, lead, upward), 422, "amount_increase")["param"]
        == "edited_payload.amount_usd"
    )
    down = {**payload, "amount_usd": 120.0}
    _error(_decide(api, pid, lead, {**APPROVE, "edited_payload": down}), 422, "edit_reason_required")
    assert _decide(api, pid, lead, {**APPROVE, **why, "edited_payload": down}).status_code == 201
    state = api.get(f"/v1/proposals/{pid}/decision", headers=agent.headers).json()
    assert state["status"] == "approved" and state["payload"]["amount_usd"] == 120.0
    assert state["payload"]["customer_id"] == payload["customer_id"]
    refund = api.get("/v1/action-types/refund", headers=lead).json()
    assert refund["editable_fields"] == ["amount_usd", "reason"] and refund["approvals_required"] == 1


def test_bulk_decisions_each_under_every_rule(
    api: httpx.Client, admin: dict[str, str], lead: dict[str, str], lead2: dict[str, str]
) -> None:
    agent = make_agent()
    ids = [_propose(api, agent, "refund") for _ in range(200)]
    r = api.post(
        "/v1/decisions/bulk",
        json={"proposal_ids": ids, "verdict": "approve", "comment": "batch"},
        headers=lead,
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == ids and {i["status"] for i in items} == {201}
    assert len({i["decision"]["id"] for i in items}) == 200
    with read_session() as session:
        decided = session.exec(
            select(AuditEvent.subject).where(
                AuditEvent.action == "proposal.decided",
                AuditEvent.subject.in_([f"proposal:{i}" for i in ids]),  # type: ignore[attr-defined]
            )
        ).all()
        rows = session.exec(select(Decision).where(Decision.proposal_id.in_(ids))).all()  # type: ignore[attr-defined]
    assert sorted(decided) == sorted(f"proposal:{i}" for i in ids) and len(rows) == 200

    owned = _agent_by(api, admin, "refund", owner="lead")
    fresh, mine, claimed = (
        _propose(api, agent, "refund"),
        _propose(api, owned, "refund"),
        _propose(api, agent, "refund"),
    )
    assert api.post(f"/v1/proposals/{claimed}/claim", headers=lead2).status_code == 200
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    mixed = [fresh, ids[0], mine, claimed, missing]
    r = api.post("/v1/decisions/bulk", json={"proposal_ids": mixed, "verdict": "approve"}, headers=lead)
    got = {i["id"]: (i["status"], i.get("error", {}).get("code")) for i in r.json()["items"]}
    assert got == {
        fresh: (201, None),
        ids[0]: (409, "already_decided"),
        mine: (403, "separation_of_duties"),
        claimed: (409, "claimed"),
        missing: (404, "resource_missing"),
    }
    reject = {"proposal_ids": [claimed], "verdict": "reject", "reason_codes": ["duplicate"]}
    (item,) = api.post("/v1/decisions/bulk", json=reject, headers=lead2).json()["items"]
    assert item["status"] == 201 and item["decision"]["verdict"] == "reject"


def test_assignment_and_my_queue(
    api: httpx.Client,
    agent: AgentCreds,
    lead: dict[str, str],
    lead2: dict[str, str],
    reviewer: dict[str, str],
) -> None:
    to_me, to_group, other = (_propose(api, agent, "refund") for _ in range(3))
    assert api.post(f"/v1/proposals/{to_me}/assign", json={"to": "lead"}, headers=lead2).status_code == 200
    r = api.post(f"/v1/proposals/{to_group}/assign", json={"to": "group:support_refunds"}, headers=lead2)
    assert r.status_code == 200 and r.json()["assigned_to"] == "group:support_refunds"
    assert api.post(f"/v1/proposals/{other}/assign", json={"to": ""}, headers=lead2).status_code == 422

    def queue(who: dict[str, str], **params: str) -> list[str]:
        page = api.get("/v1/queue", params={"agent": agent.name, **params}, headers=who)
        assert page.status_code == 200, page.text
        return [i["id"] for i in page.json()["items"]]

    assert queue(lead, assigned="me") == [to_me]
    assert queue(lead, assigned="group") == [to_group]
    assert queue(lead2, assigned="me") == []
    assert set(queue(lead, decidable="true")) == {to_me, to_group, other}
    # Rita lacks the refund role: policy would refuse her, so nothing is decidable for her.
    assert queue(reviewer, decidable="true") == []
    assert api.post(f"/v1/proposals/{other}/claim", headers=lead2).status_code == 200
    assert set(queue(lead, decidable="true")) == {to_me, to_group}
    assert _decide(api, to_me, lead).status_code == 201
    assert queue(lead, decidable="true") == [to_group]


def test_silence_reminds_escalates_then_ends_as_configured(
    api: httpx.Client, admin: dict[str, str], lead: dict[str, str]
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from backend.core.db import transaction
    from models.common import utcnow
    from models.proposals import Proposal
    from tests.support.webhook_receiver import Receiver, eventually

    timers = {"remind_after_seconds": 1, "escalate_after_seconds": 2, "escalate_to": "support_leads"}
    rejecting = make_action_type(**timers)
    expiring = make_action_type(**timers, on_expiry="expire")
    agent = make_agent(grants=(rejecting, expiring))
    types = ["proposal.reminded", "proposal.escalated", "proposal.expired"]
    receiver = Receiver()
    hook = api.post("/v1/webhooks", json={"url": receiver.url, "event_types": types}, headers=admin).json()[
        "id"
    ]
    try:
        pids = {_propose(api, agent, t): t for t in (rejecting, expiring)}
        with transaction() as session:  # a 4 s deadline (the API's shortest is 10 s)
            session.execute(
                update(Proposal)
                .where(Proposal.id.in_(list(pids)))  # type: ignore[attr-defined]
                .values(expires_at=utcnow() + timedelta(seconds=4))
            )
        assert eventually(lambda: len(receiver.accepted()) >= 6, timeout=30)
        for pid in pids:
            seen = [r.json for r in receiver.accepted() if r.json["data"]["proposal_id"] == pid]
            assert [s["type"] for s in seen] == types
            assert seen[1]["data"]["to"] == "group:support_leads"
            audit = [e.action for e in _events(pid, "proposal.reminded") + _events(pid, "proposal.escalated")]
            assert audit == ["proposal.reminded", "proposal.escalated"]
        outcome = {
            pids[p]: api.get(f"/v1/proposals/{p}/decision", headers=agent.headers).json() for p in pids
        }
        assert outcome[rejecting]["status"] == "rejected"
        assert outcome[rejecting]["decision"]["reason_codes"] == ["expired"]
        assert outcome[expiring]["status"] == "expired"
        done = api.get("/v1/queue", params={"status": "rejected", "agent": agent.name}, headers=lead).json()
        (item,) = done["items"]
        assert item["escalated"] is True and item["assigned_to"] == "group:support_leads"
    finally:
        api.delete(f"/v1/webhooks/{hook}", headers=admin)
        receiver.close()


def _pii_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["order_id", "amount_usd", "email", "customer"],
        "properties": {
            "order_id": {"type": "string"},
            "amount_usd": {"type": "number", "exclusiveMinimum": 0},
            "email": {"type": "string", "x-pii": True},
            "customer": {
                "type": "object",
                "properties": {"name": {"type": "string", "x-pii": True}, "tier": {"type": "string"}},
            },
        },
    }


def test_no_pii_reaches_a_reviewer_without_the_right_through_any_get(
    api: httpx.Client, oidc: OidcProvider, admin: dict[str, str], lead: dict[str, str]
) -> None:
    name = make_action_type(schema=_pii_schema(), editable_fields=None)
    agent = make_agent(grants=(name,))
    email, person_name = f"pii-{uuid.uuid4().hex}@example.com", f"Name-{uuid.uuid4().hex}"
    hook = api.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/never", "event_types": ["proposal.created", "proposal.decided"]},
        headers=admin,
    ).json()["id"]

    def propose() -> str:
        payload = {
            "order_id": "o-1",
            "amount_usd": 150.0,
            "email": email,
            "customer": {"name": person_name, "tier": "gold"},
        }
        r = api.post(
            "/v1/proposals",
            json={"action_type": name, "payload": payload, "summary": "pii"},
            headers=agent.headers,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    pending, decided = propose(), propose()
    seen = api.get(f"/v1/proposals/{decided}", headers=lead).json()
    assert seen["payload"]["email"] == "***" and seen["payload"]["customer"] == {
        "name": "***",
        "tier": "gold",
    }
    # The lead edits what they saw (masked): the fields they did not touch keep their values.
    edit = {**seen["payload"], "amount_usd": 100.0}
    assert (
        _decide(api, decided, lead, {**APPROVE, "edited_payload": edit, "comment": "less"}).status_code == 201
    )
    state = api.get(f"/v1/proposals/{decided}/decision", headers=agent.headers).json()
    assert state["payload"]["email"] == email and state["payload"]["amount_usd"] == 100.0
    clear = api.get(f"/v1/proposals/{decided}", headers=admin).json()
    assert clear["payload"]["email"] == email  # the unmask role sees values, so the walk can fail

    auditor = person(oidc, "audrey", ["auditor"])
    fill = {"proposal_id": decided, "agent_id": agent.id, "agent_ref": agent.id, "name": name}
    spec = api.get("/openapi.json").json()
    walked = 0
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        url = path
        for key, value in fill.items():
            url = url.replace("{" + key + "}", value)
        if "{" in url:
            url = url.split("{", 1)[0] + "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        variants: list[dict[str, str]] = [{}]
        if path == "/v1/queue":
            variants = [{"status": s} for s in ("pending", "approved")] + [{"decidable": "true"}]
        if path == "/v1/audit":
            variants = [{"subject": f"proposal:{p}"} for p in (pending, decided)] + [{}]
        if path.startswith("/v1/proposals/{proposal_id}"):
            variants = [{}, {"__pid": pending}]
        for who in (lead, auditor):
            for params in variants:
                target = url.replace(decided, params.pop("__pid")) if "__pid" in params else url
                r = api.get(
                    target,
                    params={"agent": agent.name, **params} if path == "/v1/queue" else params,
                    headers=who,
                )
                walked += 1
                assert email not in r.text and person_name not in r.text, f"{target} {params} leaks PII"
    assert walked > 20
    with read_session() as session:
        from models.webhooks import WebhookDelivery

        bodies = session.exec(select(WebhookDelivery.body).where(WebhookDelivery.endpoint_id == hook)).all()
    assert len(bodies) >= 3 and not [b for b in bodies if email in b or person_name in b]
    api.delete(f"/v1/webhooks/{hook}", headers=admin)


def test_racing_approvers_meet_the_quorum_exactly_once(api: httpx.Client, oidc: OidcProvider) -> None:
    four_eyes = make_action_type(approvals_required=2)
    agent = make_agent(grants=(four_eyes,))
    pid = _propose(api, agent, four_eyes)
    racers = [person(oidc, f"racer-{i}", ["reviewer", "support_refunds"]) for i in range(12)]
    barrier = threading.Barrier(len(racers))
    answers: list[int] = []

    def approve(who: dict[str, str]) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            barrier.wait()
            answers.append(
                client.post(f"/v1/proposals/{pid}/decisions", json=APPROVE, headers=who).status_code
            )

    threads = [threading.Thread(target=approve, args=(who,)) for who in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Two approvals count, the proposal is approved once; everyone else lost the race cleanly.
    assert sorted(answers).count(201) == 2 and set(answers) <= {201, 409}, answers
    view = api.get(f"/v1/proposals/{pid}", headers=racers[0]).json()
    assert view["status"] == "approved" and len(view["approvals"]) == 2
    assert len(view["decisions"]) == 2 and len(_events(pid, "proposal.decided")) == 1
