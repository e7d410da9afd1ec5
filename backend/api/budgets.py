"""Admins set an agent's budgets and reset its breaker."""

from fastapi import APIRouter

from backend.agents import lookup
from backend.agents import service as agents
from backend.api.common import ERRORS
from backend.api.deps import AdminDep, ReadSessionDep, SessionDep
from backend.controls import breaker
from backend.controls.budgets import service as budgets
from backend.core.responses import JsonResponse
from models.agents import AgentPublic
from models.policies import BreakerReset, BudgetsUpdate

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.get("/{agent_id}/budgets", responses=ERRORS)
def get_budgets(agent_id: str, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    return JsonResponse(budgets.view(session, lookup.find(session, agent_id)))


@router.put("/{agent_id}/budgets", responses=ERRORS)
def put_budgets(agent_id: str, body: BudgetsUpdate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    """Replace the agent's budgets with the list given (an empty list removes them all)."""
    view = budgets.replace(session, lookup.find(session, agent_id), body.budgets, admin.actor)
    session.commit()
    return JsonResponse(view)


@router.post("/{agent_id}/breaker/reset", response_model=AgentPublic, responses=ERRORS)
def reset_breaker(
    agent_id: str, session: SessionDep, admin: AdminDep, body: BreakerReset | None = None
) -> JsonResponse:
    """Close a tripped breaker: the agent's dials apply again."""
    agent = lookup.find(session, agent_id)
    breaker.reset(session, agent, admin.actor, (body or BreakerReset()).reason)
    view = agents.view(session, agent)
    session.commit()
    return JsonResponse(view)
