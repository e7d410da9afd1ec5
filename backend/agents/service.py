"""Agents: creation with grants and dials, listing, the kill switch per agent, dials."""

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.controls import eval_gate
from backend.core.errors import ApiError, not_found
from models.agents import Agent, AgentCreate, Dial, Grant, agent_public
from models.audit import AuditAction
from models.common import utcnow

MAX_LIMIT = 200


def create(session: Session, spec: AgentCreate, actor: str) -> dict[str, Any]:
    if session.exec(select(Agent).where(Agent.name == spec.name)).first() is not None:
        raise ApiError(409, "agent_exists", f"An agent named {spec.name!r} already exists.", param="name")
    unknown_dials = set(spec.dials) - set(spec.grants)
    grants = list(dict.fromkeys([*spec.grants, *unknown_dials]))
    for name in grants:
        if action_types.get(session, name) is None:
            raise ApiError(422, "unknown_action_type", f"No action type named {name!r}.", param="grants")
    agent = Agent(name=spec.name, owner=spec.owner, description=spec.description, created_by=actor)
    session.add(agent)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ApiError(
            409, "agent_exists", f"An agent named {spec.name!r} already exists.", param="name"
        ) from exc
    rows = [
        Grant(
            agent_id=agent.id,
            action_type=name,
            dial=spec.dials.get(name, Dial.approve).value,
            granted_by=actor,
        )
        for name in grants
    ]
    for name in grants:
        if spec.dials.get(name) == Dial.execute:
            eval_gate.check(session, agent, name)  # a new agent starting at execute skips no gate
    session.add_all(rows)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.AGENT_CREATED,
        f"agent:{agent.id}",
        {
            "name": agent.name,
            "owner": agent.owner,
            "grants": {g.action_type: g.dial for g in rows},
        },
    )
    return agent_public(agent, rows)


def grants_of(session: Session, agent_id: str) -> list[Grant]:
    return list(
        session.exec(select(Grant).where(Grant.agent_id == agent_id).order_by(Grant.action_type)).all()
    )


def view(session: Session, agent: Agent) -> dict[str, Any]:
    return agent_public(agent, grants_of(session, agent.id))


def list_agents(session: Session, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    stmt = select(Agent).order_by(Agent.name)
    if cursor:
        stmt = stmt.where(Agent.name > cursor)
    rows = list(session.exec(stmt.limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    grants: dict[str, list[Grant]] = {}
    if rows:
        for g in session.exec(select(Grant).where(Grant.agent_id.in_([r.id for r in rows]))).all():  # type: ignore[attr-defined]
            grants.setdefault(g.agent_id, []).append(g)
    return {
        "items": [agent_public(r, sorted(grants.get(r.id, []), key=lambda g: g.action_type)) for r in rows],
        "next_cursor": rows[-1].name if more and rows else None,
    }


def set_suspended(
    session: Session, agent: Agent, suspended: bool, actor: str, reason: str = ""
) -> dict[str, Any]:
    if agent.suspended != suspended:
        agent.suspended = suspended
        agent.updated_at = utcnow()
        session.add(agent)
        action = AuditAction.AGENT_SUSPENDED if suspended else AuditAction.AGENT_RESUMED
        audit.record(session, actor, action, f"agent:{agent.id}", {"reason": reason})
    return view(session, agent)


def grant(session: Session, agent: Agent, action_type: str, actor: str) -> Grant:
    if action_types.get(session, action_type) is None:
        raise not_found("action type", action_type)
    row = session.exec(
        select(Grant).where(Grant.agent_id == agent.id, Grant.action_type == action_type)
    ).first()
    if row is None:
        row = Grant(agent_id=agent.id, action_type=action_type, granted_by=actor)
        session.add(row)
        session.flush()
        audit.record(
            session, actor, AuditAction.GRANT_ADDED, f"agent:{agent.id}", {"action_type": action_type}
        )
    return row


def set_dial(
    session: Session, agent: Agent, action_type: str, mode: Dial, actor: str, reason: str = ""
) -> dict[str, Any]:
    """Turn an agent's dial for one action type (granting the type if it was not)."""
    row = grant(session, agent, action_type, actor)
    before = row.dial
    if mode == Dial.execute and before != Dial.execute.value:
        eval_gate.check(session, agent, action_type)
    if before != mode.value:
        row.dial = mode.value
        row.updated_at = utcnow()
        session.add(row)
        audit.record(
            session,
            actor,
            AuditAction.DIAL_CHANGED,
            f"agent:{agent.id}",
            {"action_type": action_type, "from": before, "to": mode.value, "reason": reason},
        )
    return view(session, agent)
