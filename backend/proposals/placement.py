"""Placing proposals in groups: concurrent creates share one write transaction.

Every proposal has to pass through something serial: SQLite's single writer, and on
PostgreSQL the audit chain's head row and the agent's guard row. Placed one transaction
each, every proposal pays alone for taking those locks, for the statements around them and
for the commit. Placed as a batch (group commit), they pay once, and the work that needs
no lock (validation, the policy gate) is done before the lock is taken.

Each proposal still follows the order of checks in ``docs/architecture.md`` and gets its own answer: one
proposal's refusal never affects another in the same batch. In two phases:

1. *Outside the write lock*, in a read session: in one statement for all the batch's
   agents, the agents, their grants with the granted action types, the policy version,
   whether each agent has budgets and whether any webhook endpoint is live; per proposal,
   the payload's validation and the gate's verdict.
2. *In one write transaction*: the API keys and the answers stored under the batch's
   idempotency keys; then the agents' guard rows (the lock), then the agents' current
   state and the kill switch, which may have changed since phase 1 (grants, action types
   and the policy are taken as phase 1 read them, a moment earlier, as for any request
   that races a change of configuration); per proposal, admission, idempotency, budgets
   and guards, the effective mode, the rows and the audit events; then one commit.
"""

import structlog
from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlmodel import Session

from backend.agents import keys
from backend.catalog import action_types
from backend.controls import kill_switch
from backend.controls.budgets import ledger
from backend.controls.policy import gate
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.proposals import idempotency
from backend.proposals.batch import Batch, Configuration, Placed, Placement, Prepared
from backend.webhooks import events as webhook_events
from models.action_types import ActionType
from models.agents import Agent, ApiKey, Grant
from models.policies import Budget, PolicyVersion
from models.system import SystemFlag

__all__ = ["Placed", "Placement", "place_batch"]

log = structlog.get_logger()

# Phase 1 reads what placing needs of the batch's agents in one statement, whatever the
# number of agents: each agent with whether it has budgets (most have none, which spares
# reading them), each of its grants with the granted action type, the policy version, and
# whether any webhook endpoint is live (most batches then need no lookup for their events).
_CONFIGURATION = (
    select(
        Agent,
        exists().where(Budget.agent_id == Agent.id),
        Grant,
        ActionType,
        select(func.max(PolicyVersion.version)).scalar_subquery(),
        webhook_events.ANY_LIVE,
    )
    .outerjoin(Grant, Grant.agent_id == Agent.id)  # type: ignore[arg-type]
    .outerjoin(ActionType, ActionType.name == Grant.action_type)  # type: ignore[arg-type]
    .where(Agent.id.in_(bindparam("ids", expanding=True)))  # type: ignore[attr-defined]
)
# Only for action types no agent in the batch is granted: unknown (422) or not granted (403)?
_ACTION_TYPES = select(ActionType).where(
    ActionType.name.in_(bindparam("names", expanding=True))  # type: ignore[attr-defined]
)
_KILL_SWITCH = select(SystemFlag.value).where(SystemFlag.name == kill_switch.FLAG)
# The agents with the kill switch beside them: one round trip fewer inside the lock.
_AGENTS = select(Agent, _KILL_SWITCH.scalar_subquery()).where(
    Agent.id.in_(bindparam("ids", expanding=True))  # type: ignore[attr-defined]
)
_KEYS = select(ApiKey.id, ApiKey.revoked_at, ApiKey.expires_at).where(
    ApiKey.id.in_(bindparam("ids", expanding=True))  # type: ignore[attr-defined]
)
# A batch that keeps failing (e.g. the same key committed concurrently by another
# replica, every time) is split, so one proposal's trouble stays its own.
_ATTEMPTS = 3


def place_batch(items: list[Placement]) -> list[Placed | Exception]:
    """Place every item; the answer for each is a :class:`Placed` or the exception to raise
    (an ``ApiError`` for a refusal)."""
    prepared, hooks_live = _prepare(items)
    conflict: IntegrityError | None = None
    for _attempt in range(_ATTEMPTS):
        try:
            return list(_write(items, prepared, hooks_live))
        except IntegrityError as exc:
            # A concurrent transaction (another replica) committed one of our keys first;
            # running the batch again replays its answer for that item.
            conflict = exc
        except (OperationalError, InterfaceError):
            raise  # the database is unreachable: every item's answer is the same 503
        except Exception as exc:
            # Something in one item that validation did not catch (a value the database or
            # the encoder refuses): place each alone, so that only that item fails.
            if len(items) == 1:
                return [_refused(exc)]
            log.warning("placement_batch_split", size=len(items), error=type(exc).__name__)
            return [_alone(item) for item in items]
    assert conflict is not None
    if len(items) > 1:
        return [_alone(item) for item in items]
    if items[0].idempotency_key is None:
        raise conflict
    return [ApiError(409, "idempotency_conflict", "Concurrent requests with this key; retry.")]


def _alone(item: Placement) -> Placed | Exception:
    try:
        return place_batch([item])[0]
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        return exc


def _refused(exc: Exception) -> Exception:
    """A proposal that failed alone: a value the database or the JSON encoder refused is
    the caller's (422); anything else stays a server error, logged."""
    cause = exc.orig if isinstance(exc, StatementError) else exc
    if isinstance(exc, DataError) or isinstance(cause, ValueError | TypeError | OverflowError):
        log.warning("proposal_refused_by_storage", error=type(exc).__name__)
        return ApiError(422, "invalid_value", "The proposal holds a value that cannot be stored.")
    log.error("proposal_failed", error=type(exc).__name__, exc_info=exc)
    return exc


# --- phase 1: no write lock ------------------------------------------------------------


def _prepare(items: list[Placement]) -> tuple[list[Prepared], bool]:
    """Each item's admission and verdict, and whether any webhook endpoint is live."""
    agent_ids = sorted({item.agent_id for item in items})
    agents: dict[str, tuple[Agent, bool]] = {}
    grants: dict[tuple[str, str], Grant] = {}
    granted: dict[str, list[str]] = {agent_id: [] for agent_id in agent_ids}
    known: dict[str, ActionType] = {}
    version, hooks_live = None, True
    # Independent reads, no common snapshot needed: on PostgreSQL that spares BEGIN and ROLLBACK.
    with read_session(snapshot=False) as session:
        for agent, has_budgets, grant, action_type, newest, live in session.execute(
            _CONFIGURATION, {"ids": agent_ids}
        ):
            agents[agent.id] = (agent, bool(has_budgets))
            version, hooks_live = newest, bool(live)
            if grant is not None:
                grants[(grant.agent_id, grant.action_type)] = grant
                granted[grant.agent_id].append(grant.action_type)
                known[action_type.name] = action_type
        others = sorted({item.body.action_type for item in items} - set(known))
        if others:
            known.update((t.name, t) for t in session.execute(_ACTION_TYPES, {"names": others}).scalars())
        policies = gate.compiled(session, version) if version is not None else None
    prepared = []
    for item in items:
        agent, has_budgets = agents.get(item.agent_id, (None, False))
        grant = grants.get((item.agent_id, item.body.action_type))
        config = Configuration(agent, grant, known.get(item.body.action_type), has_budgets)
        try:
            prep = _judge(item, config, policies, granted.get(item.agent_id, []))
        except Exception as exc:  # this item's own trouble, answered after admission
            prep = Prepared.failed(config, _refused(exc))
        prepared.append(prep)
    return prepared, hooks_live


def _judge(
    item: Placement, config: Configuration, policies: gate.Compiled | None, granted: list[str]
) -> Prepared:
    """Validation and the gate: pure work, done before the lock. Errors wait for admission."""
    prepared = Prepared.of(item.body, config)
    agent, action_type = config.agent, config.action_type
    if agent is None or action_type is None or config.grant is None:
        return prepared
    try:
        action_types.validate_payload(action_type, item.body.payload)
    except ApiError as invalid:
        prepared.invalid = invalid
        return prepared
    prepared.verdict = gate.judge(policies, agent, granted, action_type, item.body.payload, prepared.context)
    return prepared


# --- phase 2: one write transaction ----------------------------------------------------


def _write(items: list[Placement], prepared: list[Prepared], hooks_live: bool) -> list[Placed | Exception]:
    with transaction() as session:
        if not hooks_live:
            webhook_events.none_live(session)
        batch = _open(session, items, prepared)
        outcomes = [_one(batch, item, prep) for item, prep in zip(items, prepared, strict=True)]
        batch.close()
    return outcomes


def _open(session: Session, items: list[Placement], prepared: list[Prepared]) -> Batch:
    """Read the keys and what earlier requests stored under this batch's idempotency keys,
    then lock the agents' guard rows (in id order, so replicas never deadlock) and read what
    a concurrent request may have changed since phase 1: the agents and the kill switch.

    The first two reads come before the lock to keep it short: a key revoked a moment later
    is like a revocation racing the request, and an idempotency key another replica commits
    meanwhile fails this batch at the primary key, which then runs again and replays it.
    """
    conn = session.connection()
    key_ids = sorted({item.key_id for item in items if item.key_id is not None})
    keys = {row.id: row for row in conn.execute(_KEYS, {"ids": key_ids})} if key_ids else {}
    stored = idempotency.load_stored(
        session, [(item.agent_id, item.idempotency_key) for item in items if item.idempotency_key is not None]
    )
    agent_ids = sorted({p.config.agent.id for p in prepared if p.config.agent is not None})
    windows = ledger.lock_guards(session, agent_ids)
    # Read after the guard rows are ours: a breaker tripped or an agent suspended by someone
    # else while we waited must count.
    rows = session.execute(_AGENTS, {"ids": agent_ids}).all()
    batch = Batch(
        session,
        kill_switch=any(bool(engaged) for _, engaged in rows),
        keys=keys,
        answers=idempotency.Answers(stored),
    )
    batch.agents = {agent.id: agent for agent, _ in rows}
    for agent in batch.agents.values():
        batch.open_ledger(agent, windows[agent.id])
    return batch


def _one(batch: Batch, item: Placement, prep: Prepared) -> Placed | Exception:
    agent = batch.agents.get(item.agent_id)
    if agent is None:
        return keys.invalid_key()
    key_error = batch.key_error(item.key_id)
    if key_error is not None:
        return key_error
    refusal = batch.admission_refusal(agent, prep.config, item.body.action_type)
    if refusal is not None:
        return refusal
    if prep.invalid is not None:
        return prep.invalid
    if item.idempotency_key is not None:
        earlier = batch.replay(item.agent_id, item.idempotency_key, item.request_hash)
        if earlier is not None:
            return earlier
    placed = batch.place(agent, item.body, item.idempotency_key, prep, item.traceparent)
    if isinstance(placed, ApiError):
        return placed
    if item.idempotency_key is not None:
        batch.remember(item.agent_id, item.idempotency_key, item.request_hash, placed)
    return placed
