"""Small read models the review console needs beyond the queue: counts and an agent's record."""

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from backend.agents import lookup
from backend.auth.oidc import User
from backend.catalog import action_types
from backend.controls import admission, kill_switch
from backend.controls.policy import gate
from backend.proposals import queue
from backend.proposals.lookup import load as lookup_proposal
from models.agents import Agent
from models.common import utcnow
from models.policies import PolicyVersion
from models.proposals import Proposal, Status

# "Close to expiry" in the queue: the reviewer should pick these first.
SOON = timedelta(hours=1)
HISTORY_ITEMS = 10
# How many of an agent's latest proposals its record covers.
WINDOW = 1000


def queue_counts(session: Session, action_type: str | None = None) -> dict[str, Any]:
    """Pending totals for the queue header: all, due within the hour, and being reviewed.

    The first two are answered from the queue index alone; no per-type breakdown, which would
    read every pending row (100 ms at 100,000 pending on SQLite).
    """
    now = utcnow()
    live = [Proposal.status == Status.pending.value, Proposal.expires_at > now]
    if action_type:
        live.append(Proposal.action_type == action_type)
    pending = session.exec(select(func.count()).where(*live)).one()
    soon = session.exec(select(func.count()).where(*live, Proposal.expires_at <= now + SOON)).one()
    claimed = session.exec(
        select(func.count()).where(*live, Proposal.claim_expires_at > now)  # type: ignore[operator]
    ).one()
    return {"pending": int(pending), "expiring_soon": int(soon), "claimed": int(claimed)}


def agent_history(session: Session, agent_ref: str, unmask: bool = True) -> dict[str, Any]:
    """How this agent's proposals have fared: counts by status and its latest decided ones."""
    agent = lookup.find(session, agent_ref)
    # The latest proposals only (through the agent/created_at index): a reviewer wants the recent
    # record, and a busy agent's whole past would cost a scan on every review screen. One read
    # of the window's narrow columns gives both the counts and the latest decided ones; only
    # those few are then loaded whole.
    window = session.exec(
        select(Proposal.id, Proposal.status, Proposal.decided_at)
        .where(Proposal.agent_id == agent.id)
        .order_by(Proposal.created_at.desc())  # type: ignore[attr-defined]
        .limit(WINDOW)
    ).all()
    counts: dict[str, int] = {}
    for _, status, _ in window:
        counts[status] = counts.get(status, 0) + 1
    latest = sorted(((at, pid) for pid, _, at in window if at is not None), reverse=True)[:HISTORY_ITEMS]
    loaded = {
        r.id: r
        for r in session.exec(select(Proposal).where(Proposal.id.in_([pid for _, pid in latest]))).all()  # type: ignore[attr-defined]
    }
    decided = [loaded[pid] for _, pid in latest if pid in loaded]
    return {
        "agent_id": agent.id,
        "agent_name": agent.name,
        "suspended": agent.suspended,
        "breaker_tripped_at": agent.breaker_tripped_at,
        "window": WINDOW,
        "counts": counts,
        # final_payload: what was approved when an approver edited it (the amount paid).
        "recent": queue.summaries(session, decided, unmask, final_payload=True),
    }


_GROUP_REF = re.compile(r'Group::"((?:[^"\\]|\\.)*)"')


def approval_rights(session: Session, proposal_id: str, user: User) -> dict[str, Any]:
    """May this reviewer approve this proposal, and which groups may: so the console can say so
    before the click instead of after it.

    The answer is the policy gate's own (``gate.judge_approval``), asked once for the caller and
    once for each group the current policy text or the action type names; the decision itself
    is judged again when it is made, so this is advice, never a grant.
    """
    proposal = lookup_proposal(session, proposal_id)
    action_type = action_types.require(session, proposal.action_type)
    agent = session.get(Agent, proposal.agent_id)
    assert agent is not None
    mine = gate.judge_approval(session, user, agent, action_type, proposal.payload, proposal.context)
    # A suspended agent or an engaged kill switch stops every approval, whoever asks.
    refusal = admission.refusal(agent, kill_switch.engaged(session), admission.Asker.reviewer)
    policies = gate.compiled(session)
    row = session.get(PolicyVersion, policies.version) if policies and policies.version else None
    candidates = set(_GROUP_REF.findall(row.text)) if row is not None else set()
    if action_type.approver_role:
        candidates.add(action_type.approver_role)
    groups = []
    for group in sorted(candidates):
        probe = User(sub=f"group:{group}", email=None, name=None, groups=(group,))
        probed = gate.judge_approval(session, probe, agent, action_type, proposal.payload, proposal.context)
        if probed.allowed:
            groups.append(group)
    return {
        "approve": mine.allowed and refusal is None,
        "blocked": None if refusal is None else refusal.message,
        "policy_ids": mine.policy_ids,
        "approver_groups": groups,
    }
