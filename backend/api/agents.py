"""Admins manage agents, their keys, dials and suspension."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.agents import keys, lookup
from backend.agents import service as agents
from backend.api.common import ERRORS
from backend.api.deps import AdminDep, ReadSessionDep, SessionDep
from backend.core.responses import JsonResponse
from models.agents import AgentCreate, AgentPublic, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, DialUpdate
from models.common import Page, StrictModel

router = APIRouter(prefix="/v1/agents", tags=["agents"])


class SuspendBody(StrictModel):
    reason: str = ""


@router.get("", response_model=Page[AgentPublic], responses=ERRORS)
def list_agents(
    session: ReadSessionDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=agents.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JsonResponse:
    return JsonResponse(agents.list_agents(session, limit, cursor))


@router.post("", status_code=201, response_model=AgentPublic, responses=ERRORS)
def create_agent(body: AgentCreate, session: SessionDep, admin: AdminDep) -> JsonResponse:
    view = agents.create(session, body, admin.actor)
    session.commit()
    return JsonResponse(view, status_code=201)


@router.get("/{agent_id}", response_model=AgentPublic, responses=ERRORS)
def get_agent(agent_id: str, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    return JsonResponse(agents.view(session, lookup.find(session, agent_id)))


@router.get("/{agent_id}/keys", response_model=Page[ApiKeyPublic], responses=ERRORS)
def list_keys(agent_id: str, session: ReadSessionDep, _admin: AdminDep) -> JsonResponse:
    rows = keys.list_keys(session, lookup.find(session, agent_id))
    return JsonResponse({"items": [r.model_dump(mode="json") for r in rows], "next_cursor": None})


@router.post("/{agent_id}/keys", status_code=201, response_model=ApiKeyCreated, responses=ERRORS)
def create_key(
    agent_id: str, session: SessionDep, admin: AdminDep, body: ApiKeyCreate | None = None
) -> JsonResponse:
    """Mint a key. The response is the only time the key is ever shown."""
    created = keys.create_key(session, lookup.find(session, agent_id), body or ApiKeyCreate(), admin.actor)
    session.commit()
    return JsonResponse(created.model_dump(mode="json"), status_code=201)


@router.delete("/{agent_id}/keys/{key_id}", response_model=ApiKeyPublic, responses=ERRORS)
def revoke_key(agent_id: str, key_id: str, session: SessionDep, admin: AdminDep) -> JsonResponse:
    revoked = keys.revoke_key(session, lookup.find(session, agent_id), key_id, admin.actor)
    session.commit()
    return JsonResponse(revoked.model_dump(mode="json"))


@router.post("/{agent_id}/suspend", response_model=AgentPublic, responses=ERRORS)
def suspend(
    agent_id: str, session: SessionDep, admin: AdminDep, body: SuspendBody | None = None
) -> JsonResponse:
    """The per-agent kill switch: every request of this agent is refused from now on."""
    view = agents.set_suspended(
        session, lookup.find(session, agent_id), True, admin.actor, (body or SuspendBody()).reason
    )
    session.commit()
    return JsonResponse(view)


@router.post("/{agent_id}/resume", response_model=AgentPublic, responses=ERRORS)
def resume(
    agent_id: str, session: SessionDep, admin: AdminDep, body: SuspendBody | None = None
) -> JsonResponse:
    view = agents.set_suspended(
        session, lookup.find(session, agent_id), False, admin.actor, (body or SuspendBody()).reason
    )
    session.commit()
    return JsonResponse(view)


@router.put("/{agent_id}/dials/{action_type}", response_model=AgentPublic, responses=ERRORS)
def set_dial(
    agent_id: str, action_type: str, body: DialUpdate, session: SessionDep, admin: AdminDep
) -> JsonResponse:
    view = agents.set_dial(
        session, lookup.find(session, agent_id), action_type, body.mode, admin.actor, body.reason
    )
    session.commit()
    return JsonResponse(view)
