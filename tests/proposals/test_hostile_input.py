"""Hostile input: a poisoned proposal fails alone, with 422 and its ``param``; counters hold
a busy day."""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from backend.agents import keys
from backend.core.db import read_session
from backend.core.errors import ApiError
from backend.proposals.batch import Placed, Placement
from backend.proposals.placement import place_batch
from models.policies import AgentUsage
from models.proposals import EvidenceItem, EvidenceKind, ProposalCreate
from tests.support.databases import Database
from tests.support.factories import AgentCreds, make_agent, refund_payload, refund_proposal


def _raw(body: dict[str, Any], **replace: str) -> bytes:
    """The body as JSON, with each ``"@name@"`` placeholder swapped for raw JSON text (what
    ``json.dumps`` would refuse to write: lone surrogates, NaN, huge numbers)."""
    text = json.dumps(body)
    for name, raw in replace.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _poisons() -> list[tuple[str, bytes]]:
    def with_note(raw: str, where: str = "payload") -> bytes:
        body = refund_proposal()
        if where == "payload":
            body["payload"]["note"] = "@x@"
        elif where == "evidence":
            body["evidence"][1]["content"] = {"total": "@x@"}
        else:
            body[where] = "@x@"
        return _raw(body, x=raw)

    amount = refund_proposal() | {"payload": refund_payload(1) | {"amount_usd": "@x@"}}
    return [
        ("int past 2^64 in evidence", with_note(str(2**64 + 5), "evidence")),
        ("int past 2^64 in payload", with_note(str(2**70))),
        ("negative int past 64 bits", with_note(str(-(2**64)))),
        ("nested 254 levels", with_note(_deep(254), "evidence")),
        ("nested 40 levels", with_note(_deep(40))),
        ("lone surrogate", with_note('"a\\ud800b"')),
        ("lone surrogate in summary", with_note('"\\udc00"', "summary")),
        ("NUL in payload", with_note('"a\\u0000b"')),
        ("NUL in summary", with_note('"x\\u0000"', "summary")),
        ("NUL in evidence", with_note('"\\u0000"', "evidence")),
        ("NaN", with_note("NaN")),
        ("Infinity", with_note("Infinity", "evidence")),
        ("-Infinity", with_note("-Infinity")),
        ("1e400", with_note("1e400")),
        ("NaN amount", _raw(amount, x="NaN")),
        ("huge amount", _raw(amount, x="1e30")),
        ("tokens past 64 bits", _raw(refund_proposal() | {"context": {"tokens": "@x@"}}, x=str(2**64))),
        ("cost NaN", _raw(refund_proposal() | {"context": {"cost_usd": "@x@"}}, x="NaN")),
        ("tool calls 2^40", _raw(refund_proposal() | {"context": {"tool_calls": "@x@"}}, x=str(2**40))),
    ]


def test_poisoned_proposals_fail_alone_beside_valid_ones(api: httpx.Client, lead: dict[str, str]) -> None:
    """One agent sends every poison, again and again, while another sends 300 valid
    proposals at the same time: every valid one gets 201, every poison a 4xx."""
    good, bad = make_agent(), make_agent()
    poisons = _poisons()
    headers = {"Content-Type": "application/json"}

    def send_good(i: int) -> int:
        r = api.post("/v1/proposals", json=refund_proposal(10 + i % 50), headers=good.headers)
        return r.status_code

    def send_bad(i: int) -> tuple[str, int, dict[str, Any]]:
        name, body = poisons[i % len(poisons)]
        r = api.post("/v1/proposals", content=body, headers={**bad.headers, **headers})
        return name, r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        good_futures = [pool.submit(send_good, i) for i in range(300)]
        bad_futures = [pool.submit(send_bad, i) for i in range(len(poisons) * 6)]
        good_codes = [f.result() for f in good_futures]
        bad_answers = [f.result() for f in bad_futures]
    assert good_codes == [201] * 300
    for name, status, body in bad_answers:
        assert 400 <= status < 500, (name, status, body)
        assert body["error"]["type"] == "invalid_request_error", (name, body)
    # Each refusal names the field at fault.
    by_name = {name: body for name, _, body in bad_answers}
    assert by_name["int past 2^64 in evidence"]["error"]["param"] == "evidence.1.content.total"
    assert by_name["lone surrogate"]["error"]["param"] == "payload.note"
    assert by_name["NUL in summary"]["error"]["param"] == "summary"
    assert by_name["tokens past 64 bits"]["error"]["param"] == "context.tokens"
    listed = api.get("/v1/queue", params={"agent": bad.name}, headers=lead)
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_nul_in_a_query_string_is_refused(api: httpx.Client, agent: AgentCreds) -> None:
    r = api.get("/v1/proposals/01ARZ3NDEKTSV4RRFFQ69G5FAV%00/decision", headers=agent.headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "path"
    r = api.get("/v1/queue?q=a%00b", headers=agent.headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "query"


def _key_id(agent: AgentCreds) -> str:
    with read_session() as session:
        return keys.authenticate(session, agent.key)[1].id


def test_a_failure_inside_the_batch_stays_with_its_proposal(db: Database) -> None:
    """What validation cannot see (here a body built without it) fails inside the write
    transaction; the batch is split and its neighbours commit."""
    agent = make_agent()
    key_id = _key_id(agent)

    def good(amount: float) -> Placement:
        body = ProposalCreate.model_validate(refund_proposal(amount))
        return Placement(agent.id, body, f"h{amount}", None, key_id)

    valid = ProposalCreate.model_validate(refund_proposal(5))
    record = EvidenceItem.model_construct(kind=EvidenceKind.record, content={"n": 2**64}, title="", uri=None)
    huge_evidence = valid.model_copy(update={"evidence": [record]})
    huge_payload = valid.model_copy(update={"payload": {**valid.payload, "n": 2**65}})
    items = [
        good(1),
        Placement(agent.id, huge_evidence, "bad1", None, key_id),
        good(2),
        Placement(agent.id, huge_payload, "bad2", None, key_id),
        good(3),
    ]
    first, bad1, second, bad2, third = place_batch(items)
    for placed in (first, second, third):
        assert isinstance(placed, Placed) and placed.status == 201
    for refused in (bad1, bad2):
        assert isinstance(refused, ApiError) and refused.status == 422, refused


def test_a_day_of_three_billion_tokens_is_counted(
    api: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    """Past 2^31 tokens in a day the counter must not overflow (64-bit on PostgreSQL too)."""
    agent = make_agent()
    budgets = {"budgets": [{"max_tokens_per_task": 2 * 10**9}]}  # a budget: usage is written per proposal
    assert api.put(f"/v1/agents/{agent.id}/budgets", json=budgets, headers=admin).status_code == 200
    for _ in range(3):
        body = refund_proposal() | {"context": {"tokens": 10**9}}
        r = api.post("/v1/proposals", json=body, headers=agent.headers)
        assert r.status_code == 201, r.text
        assert not any(f.startswith("budget_exceeded") for f in r.json()["flags"])
    other = make_agent()  # and one without budgets (usage summed in the batch)
    for _ in range(2):
        body = refund_proposal() | {"context": {"tokens": 2 * 10**9}}
        r = api.post("/v1/proposals", json=body, headers=other.headers)
        assert r.status_code == 201, r.text
    with read_session() as session:
        for who, expected in ((agent, 3 * 10**9), (other, 4 * 10**9)):
            total = session.execute(
                select(func.sum(AgentUsage.tokens)).where(AgentUsage.agent_id == who.id)
            ).scalar_one()
            assert int(total) == expected
