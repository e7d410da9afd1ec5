"""Budgets and guards at placement time: one agent's ledger for one write transaction.

A batch of proposals (see ``placement``) is charged against a :class:`Ledger` that holds
the agent's guard row for the whole transaction: on PostgreSQL the row's lock serialises
the agent's concurrent batches, on SQLite the database's write lock already does. Inside
that lock the sliding windows (recent tool calls, recent denials) can be kept in memory
and usage counters summed, then written for all the batch's agents at once by :func:`close`,
which is what makes a batch cheaper than the same proposals placed one transaction each.
Agents with budgets are charged proposal by proposal, since their checks read the running
daily usage. :func:`lock_guards` takes every agent's guard row in one statement.
"""

from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from backend.controls.breaker import trip
from backend.controls.budgets.limits import (
    DENIAL_LIMIT,
    DENIAL_WINDOW,
    TOOL_CALL_WINDOW,
    crossed,
    spike_in,
)
from backend.core.errors import ApiError
from models.action_types import ActionType
from models.agents import Agent
from models.common import utcnow
from models.policies import AgentGuard, AgentUsage, Budget


class _Statements:
    """Built once per dialect: constructing a statement costs more than running it."""

    def __init__(self, dialect: str) -> None:
        ins = (postgresql if dialect == "postgresql" else sqlite).insert
        charge = ins(AgentUsage).values(
            agent_id=bindparam("agent_id"),
            day=bindparam("day"),
            action_type=bindparam("action_type"),
            proposals=bindparam("proposals"),
            cost_usd=bindparam("cost"),
            tokens=bindparam("tokens"),
        )
        self.charge = charge.on_conflict_do_update(
            index_elements=["agent_id", "day", "action_type"],
            set_={
                "proposals": AgentUsage.proposals + charge.excluded.proposals,
                "cost_usd": AgentUsage.cost_usd + charge.excluded.cost_usd,
                "tokens": AgentUsage.tokens + charge.excluded.tokens,
            },
        )
        self.budgets = select(Budget).where(
            Budget.agent_id == bindparam("agent_id"),
            Budget.action_type.in_([bindparam("any_type"), bindparam("action_type")]),  # type: ignore[attr-defined]
        )
        guard = ins(AgentGuard).values(
            agent_id=bindparam("agent_id"),
            recent_tool_calls=bindparam("none"),
            recent_denials=bindparam("none"),
        )
        # DO UPDATE (not DO NOTHING) so every row comes back, and on PostgreSQL is locked until
        # commit, like SELECT ... FOR UPDATE. Run with one parameter set per agent, SQLAlchemy
        # sends a single multi-row statement (insertmanyvalues), compiled once, not per batch.
        self.lock_guards = guard.on_conflict_do_update(
            index_elements=["agent_id"], set_={"agent_id": guard.excluded.agent_id}
        ).returning(
            AgentGuard.agent_id,  # type: ignore[arg-type]
            AgentGuard.recent_tool_calls,  # type: ignore[arg-type]
            AgentGuard.recent_denials,  # type: ignore[arg-type]
        )
        self.windows = (
            update(AgentGuard)
            .where(AgentGuard.agent_id == bindparam("b_agent_id"))
            .values(recent_tool_calls=bindparam("calls"), recent_denials=bindparam("denials"))
        )


@lru_cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def lock_guards(session: Session, agent_ids: list[str]) -> dict[str, tuple[list[int], list[str]]]:
    """Take the agents' guard rows (created on first use), in the order given, in one
    statement: agent id -> (recent tool calls, recent denials)."""
    if not agent_ids:
        return {}
    hot = _statements(session.get_bind().dialect.name)
    params = [{"agent_id": agent_id, "none": []} for agent_id in agent_ids]
    found = session.connection().execute(hot.lock_guards, params)
    return {agent_id: (list(calls), list(denials)) for agent_id, calls, denials in found}


class Ledger:
    """What one agent's proposals in this transaction use, and the guards they trip."""

    def __init__(self, session: Session, agent: Agent, windows: tuple[list[int], list[str]]) -> None:
        self._session = session
        self._conn: Connection = session.connection()
        self._hot = _statements(session.get_bind().dialect.name)
        self.agent = agent
        self._calls, self._denials = windows
        self._windows_changed = False
        # (day, action type) -> [proposals, cost, tokens], written by close(session, ledgers).
        self._usage: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0.0, 0])
        self._budgets: dict[str, list[Budget]] = {}

    def charge(self, action_type: ActionType, context: dict[str, Any], has_budgets: bool) -> list[str]:
        """Flags for the proposal (e.g. ``budget_exceeded:max_tool_calls_per_task``); may trip the breaker."""
        day = utcnow().date().isoformat()
        cost, tokens = float(context.get("cost_usd") or 0.0), int(context.get("tokens") or 0)
        flags: list[str] = []
        if has_budgets:
            # Budget checks read the day's usage, so this proposal's share must be in it now.
            self._write_usage(day, action_type.name, 1, cost, tokens)
            for budget in self._budgets_for(action_type.name):
                for name in crossed(self._session, budget, self.agent.id, day, action_type.name, context):
                    if budget.hard:
                        # Refused: its share comes off the day's usage again, nothing trips.
                        self._write_usage(day, action_type.name, -1, -cost, -tokens)
                        raise budget_refusal(name)
                    flag = f"budget_exceeded:{name}"
                    if flag not in flags:
                        flags.append(flag)
        else:
            usage = self._usage[(day, action_type.name)]
            usage[0] += 1
            usage[1] += cost
            usage[2] += tokens
        tool_calls = context.get("tool_calls")
        if tool_calls is not None:
            if spike_in(self._calls, tool_calls):
                flags.append("guard_tripped:tool_call_spike")
            self._calls = [*self._calls, int(tool_calls)][-TOOL_CALL_WINDOW:]
            self._windows_changed = True
        if flags:
            data = {"flags": flags, "action_type": action_type.name, "context": context}
            trip(self._session, self.agent, flags[0], data)
        return flags

    def record_outcome(self, outcome: str) -> list[str]:
        """After the gate: count policy denials; the third in ten minutes trips the breaker."""
        if outcome != "deny":
            return []
        now = utcnow()
        recent = [t for t in self._denials if datetime.fromisoformat(t) > now - DENIAL_WINDOW]
        self._denials = [*recent, now.isoformat()]
        self._windows_changed = True
        if len(self._denials) < DENIAL_LIMIT:
            return []
        flag = "guard_tripped:policy_denials"
        trip(self._session, self.agent, flag, {"denials": len(self._denials), "window_seconds": 600})
        return [flag]

    def pending(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """What was kept in memory: usage rows to add, and the guard's new windows (or None)."""
        usage = [
            {"agent_id": self.agent.id, "day": day, "action_type": action_type, **_charge(*counts)}
            for (day, action_type), counts in self._usage.items()
        ]
        self._usage.clear()
        windows = None
        if self._windows_changed:
            windows = {"b_agent_id": self.agent.id, "calls": self._calls, "denials": self._denials}
            self._windows_changed = False
        return usage, windows

    def _write_usage(self, day: str, action_type: str, proposals: int, cost: float, tokens: int) -> None:
        row = {"agent_id": self.agent.id, "day": day, "action_type": action_type}
        self._conn.execute(self._hot.charge, {**row, **_charge(proposals, cost, tokens)})

    def _budgets_for(self, action_type: str) -> list[Budget]:
        if action_type not in self._budgets:
            params = {"agent_id": self.agent.id, "any_type": "", "action_type": action_type}
            self._budgets[action_type] = list(self._session.execute(self._hot.budgets, params).scalars())
        return self._budgets[action_type]


def budget_refusal(limit: str) -> ApiError:
    return ApiError(
        403, "budget_exceeded", f"This proposal would cross a hard budget ({limit}).", extra={"limit": limit}
    )


def _charge(proposals: int, cost: float, tokens: int) -> dict[str, Any]:
    return {"proposals": proposals, "cost": cost, "tokens": tokens}


def close(session: Session, ledgers: list[Ledger]) -> None:
    """Write every ledger's pending usage and windows, one statement each for all agents;
    call once, before the transaction commits."""
    usage: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    for ledger in ledgers:
        rows, changed = ledger.pending()
        usage += rows
        if changed is not None:
            windows.append(changed)
    hot = _statements(session.get_bind().dialect.name)
    conn = session.connection()
    if usage:
        conn.execute(hot.charge, usage)
    if windows:
        conn.execute(hot.windows, windows)
