"""The reviewers' queue: keyset pagination, oldest deadline first.

Filters beyond the index (``decidable``: only what this reviewer may decide) are applied
to rows read a page at a time, so a page may take a few reads to fill; the cursor stays
the last row returned.
"""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import and_, or_
from sqlmodel import Session, select

from backend.agents import lookup
from backend.auth.oidc import User
from backend.catalog import pii
from backend.controls.policy import gate
from backend.core.errors import ApiError
from backend.proposals import duties, quorum
from backend.proposals.views import proposal_summary
from models.action_types import ActionType
from models.agents import Agent
from models.common import utcnow
from models.proposals import Decision, Proposal, Status

MAX_LIMIT = 200
# How many rows a filtered page reads at most before answering with what it found.
_MAX_SCAN = 2000

Assigned = Literal["me", "group"]


@dataclass(frozen=True)
class QueueFilter:
    status: Status = Status.pending
    action_type: str | None = None
    agent: str | None = None
    q: str | None = None
    assigned: Assigned | None = None
    decidable: bool = False


def encode_cursor(expires_at: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([expires_at.isoformat(), ident])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, ident = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), str(ident)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ApiError(
            400, "invalid_cursor", "The cursor is not one this API issued.", param="cursor"
        ) from exc


def list_queue(
    session: Session,
    status: Status = Status.pending,
    action_type: str | None = None,
    agent: str | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    *,
    user: User | None = None,
    assigned: Assigned | None = None,
    decidable: bool = False,
) -> dict[str, Any]:
    """A page of the queue. ``user``: who reads it (masking, ``assigned``, ``decidable``);
    None reads as an unmasking service (tests, benchmarks)."""
    f = QueueFilter(status, action_type, agent, q, assigned, decidable)
    stmt = _base(session, f, user)
    after = decode_cursor(cursor) if cursor else None
    chosen: list[Proposal] = []
    scanned = 0
    more = False
    while True:
        page = stmt
        if after is not None:
            at, ident = after
            page = page.where(
                or_(Proposal.expires_at > at, and_(Proposal.expires_at == at, Proposal.id > ident))  # type: ignore[arg-type]
            )
        # A filtered page reads a little ahead (some rows will be left out), then more per read.
        batch = limit + 1 if not decidable else (limit + 1) * 2 if not scanned else max(limit + 1, 100)
        rows = list(session.exec(page.order_by(Proposal.expires_at, Proposal.id).limit(batch)).all())  # type: ignore[arg-type]
        scanned += len(rows)
        if decidable and user is not None:
            # Judged in order and only until the page is full: judging is the page's cost.
            chosen.extend(_decidable(session, rows, user, want=limit + 1 - len(chosen)))
        else:
            chosen.extend(rows)
        if len(chosen) > limit:
            more = True
            break
        if len(rows) < batch or scanned >= _MAX_SCAN:
            more = len(rows) == batch
            break
        after = (rows[-1].expires_at, rows[-1].id)
    chosen = chosen[:limit]
    items = summaries(session, chosen, unmask=user is None or pii.may_unmask(user.groups))
    next_cursor = encode_cursor(chosen[-1].expires_at, chosen[-1].id) if more and chosen else None
    return {"items": items, "next_cursor": next_cursor}


def _base(session: Session, f: QueueFilter, user: User | None) -> Any:
    stmt = select(Proposal).where(Proposal.status == f.status.value)
    if f.status == Status.pending:
        # Overdue ones are expired by the sweeper; never offer them for review meanwhile.
        stmt = stmt.where(Proposal.expires_at > utcnow())
    if f.action_type:
        stmt = stmt.where(Proposal.action_type == f.action_type)
    if f.agent:
        stmt = stmt.where(Proposal.agent_id == lookup.id_of(session, f.agent))
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Proposal.summary.ilike(f"%{escaped}%", escape="\\"))  # type: ignore[attr-defined]
    if f.assigned is not None:
        if user is None:
            raise ApiError(400, "assigned_needs_a_person", "Only a person has assignments.", param="assigned")
        if f.assigned == "me":
            stmt = stmt.where(Proposal.assigned_to == user.sub)
        else:
            groups = [f"group:{g}" for g in user.groups]
            stmt = stmt.where(Proposal.assigned_to.in_(groups))  # type: ignore[union-attr]
    return stmt


def _decidable(session: Session, rows: list[Proposal], user: User, want: int) -> list[Proposal]:
    """The first ``want`` rows this reviewer may decide now: policy lets them approve,
    separation of duties does not refuse them, and no one else holds the claim.

    Rows after the ``want``-th kept one are not judged (the page ends there, and its cursor
    with it). Separation of duties for an undecided row depends only on its agent and action
    type, so it is asked once per pair, not once per row."""
    if not rows or want <= 0:
        return []
    types = _action_types(session, {r.action_type for r in rows})
    agent_ids = {r.agent_id for r in rows}
    agents = {a.id: a for a in session.exec(select(Agent).where(Agent.id.in_(agent_ids))).all()}  # type: ignore[attr-defined]
    decisions: dict[str, list[Decision]] = {}
    for d in session.exec(
        select(Decision).where(Decision.proposal_id.in_([r.id for r in rows])).order_by(Decision.created_at)  # type: ignore[attr-defined]
    ).all():
        decisions.setdefault(d.proposal_id, []).append(d)
    now = utcnow()
    keep: list[Proposal] = []
    refused: dict[tuple[str, str], str | None] = {}
    for r in rows:
        if len(keep) >= want:
            break
        agent, action_type = agents.get(r.agent_id), types.get(r.action_type)
        if agent is None or action_type is None:
            continue
        held = r.claim_expires_at is not None and r.claim_expires_at > now
        if held and r.claimed_by not in (None, user.sub):
            continue
        mine = decisions.get(r.id, [])
        if any(d.reviewer_sub == user.sub for d in quorum.counted(r, mine)):
            continue
        if mine:
            refusal = duties.refusal(session, user, agent, action_type, mine)
        else:
            pair = (agent.id, action_type.name)
            if pair not in refused:
                refused[pair] = duties.refusal(session, user, agent, action_type, [])
            refusal = refused[pair]
        if refusal is not None:
            continue
        payload = quorum.effective_payload(r, mine)
        if not gate.judge_approval(session, user, agent, action_type, payload, r.context).allowed:
            continue
        keep.append(r)
    return keep


def summaries(
    session: Session, rows: Sequence[Proposal], unmask: bool, *, final_payload: bool = False
) -> list[dict[str, Any]]:
    """Queue rows as a reader sees them: agent names, quorum progress, masking; with
    ``final_payload``, also what was approved when an approver edited it (masked alike)."""
    names = _agent_names(session, {r.agent_id for r in rows})
    types = _action_types(session, {r.action_type for r in rows})
    now = utcnow()
    edited = _edited_payloads(session, [r.id for r in rows if r.approval_count or r.decided_at])
    policy_may_raise = bool(rows) and gate.has_quorum_rules(session)
    items = []
    for r in rows:
        action_type = types.get(r.action_type)
        required = r.approvals_required or (action_type.approvals_required if action_type else 1)
        if policy_may_raise and r.approvals_required is None and action_type is not None:
            required = quorum.required(session, r, action_type, session.get(Agent, r.agent_id))
        schema = None if unmask or action_type is None else action_type.payload_schema
        item = proposal_summary(
            r,
            names.get(r.agent_id),
            now,
            approvals_required=required,
            mask_schema=schema,
            effective_payload=edited.get(r.id),
        )
        if final_payload:
            item["final_payload"] = pii.masked(edited.get(r.id), schema)
        items.append(item)
    return items


def _edited_payloads(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest approver's edit of each of these proposals that has one."""
    if not ids:
        return {}
    rows = session.exec(
        select(Decision.proposal_id, Decision.edited_payload)
        .where(Decision.proposal_id.in_(ids), Decision.edited_payload.is_not(None))  # type: ignore[attr-defined, union-attr]
        .order_by(Decision.created_at)  # type: ignore[arg-type]
    ).all()
    return {pid: payload for pid, payload in rows if payload is not None}


def _action_types(session: Session, names: set[str]) -> dict[str, ActionType]:
    if not names:
        return {}
    rows = session.exec(select(ActionType).where(ActionType.name.in_(names))).all()  # type: ignore[attr-defined]
    return {r.name: r for r in rows}


def _agent_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.exec(select(Agent.id, Agent.name).where(Agent.id.in_(ids))).all()  # type: ignore[attr-defined]
    return {i: n for i, n in rows}
