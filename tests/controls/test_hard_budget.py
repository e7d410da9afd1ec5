"""A hard budget refuses the proposal that would cross it, instead of flagging it."""

import httpx
from sqlalchemy import func, select

from backend.core.db import read_session
from models.policies import AgentUsage
from tests.support.databases import Database
from tests.support.factories import make_agent, refund_proposal


def test_a_hard_budget_refuses(api: httpx.Client, db: Database, admin: dict[str, str]) -> None:
    agent = make_agent()
    budgets = {"budgets": [{"max_tokens_per_task": 100, "max_proposals_per_day": 2, "hard": True}]}
    r = api.put(f"/v1/agents/{agent.id}/budgets", json=budgets, headers=admin)
    assert r.status_code == 200 and r.json()["budgets"][0]["hard"] is True
    def propose(tokens: int) -> httpx.Response:
        body = refund_proposal() | {"context": {"tokens": tokens}}
        return api.post("/v1/proposals", json=body, headers=agent.headers)

    over = propose(500)
    assert over.status_code == 403
    assert over.json()["error"]["code"] == "budget_exceeded"
    assert over.json()["error"]["limit"] == "max_tokens_per_task"
    for _ in range(2):
        ok = propose(50)
        assert ok.status_code == 201 and ok.json()["flags"] == []
    third = propose(50)
    assert (third.status_code, third.json()["error"]["limit"]) == (403, "max_proposals_per_day")
    view = api.get(f"/v1/agents/{agent.id}/budgets", headers=admin).json()
    assert view["usage_today"]["proposals"] == 2  # refused proposals are not counted
    assert view["breaker_tripped_at"] is None  # nor do they trip the breaker
    with read_session() as session:
        tokens = session.execute(select(func.sum(AgentUsage.tokens)).where(AgentUsage.agent_id == agent.id))
        assert int(tokens.scalar_one()) == 100
