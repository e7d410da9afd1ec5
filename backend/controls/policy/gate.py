"""The policy gate: Cedar policies, versioned in the database, judge every proposal and approval.

Principal, action, resource and context are described at the top of
``backend/policies/default.cedar``. Each version's text is parsed once into a
``cedarpy.PolicySet`` and cached by version number (versions never change), so a
decision costs one small query for the current version number plus Cedar's evaluation.
Cedar names policies ``policy0``, ``policy1``... by position; everything stored or shown
uses each policy's ``@id`` annotation instead.
"""

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import cedarpy
import orjson
from sqlalchemy import func
from sqlmodel import Session, select

from backend.auth.oidc import User
from backend.controls.policy.paths import Paths, context_paths, project
from backend.controls.policy.text import approvals_required, check, policy_ids
from models.action_types import ActionType
from models.agents import Agent, Grant
from models.policies import PolicyVersion

Outcome = Literal["deny", "propose", "execute"]


@dataclass(frozen=True)
class GateOutcome:
    version: int | None
    outcome: Outcome
    policy_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApprovalOutcome:
    allowed: bool
    version: int | None
    policy_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Compiled:
    version: int | None
    policy_set: cedarpy.PolicySet
    ids: tuple[str, ...]
    # What of a request's context the policies can read (None: all of it); see paths.py.
    context_paths: Paths | None = None
    # Each policy's @approvals_required annotation, by position (None: it has none).
    quorums: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class Answer:
    allowed: bool
    policy_ids: list[str]
    errors: list[str]


_cache: dict[int, Compiled] = {}
_VERSION_MEMO = "signoff_policy_version"
_lock = threading.Lock()


def compile_text(text: str, version: int | None = None) -> Compiled:
    """Parse policy text (raises ``text.PolicyError`` when it is not valid Cedar)."""
    return Compiled(
        version, check(text), tuple(policy_ids(text)), context_paths(text), tuple(approvals_required(text))
    )


def current_version(session: Session) -> int | None:
    return session.exec(select(func.max(PolicyVersion.version))).one()


def compiled(session: Session, version: int | None = None) -> Compiled | None:
    """The parsed policy set of ``version`` (default: the current one), from the cache."""
    if version is None:
        # One read per transaction: a decision asks for the policy twice (approve, quorum),
        # and both answers must come from the same version.
        version = session.info.get(_VERSION_MEMO)
        if version is None:
            version = current_version(session)
            if version is None:
                return None
            session.info[_VERSION_MEMO] = version
    hit = _cache.get(version)
    if hit is not None:
        return hit
    row = session.get(PolicyVersion, version)
    if row is None:
        return None
    result = compile_text(row.text, version)
    with _lock:
        _cache[version] = result
    return result


# --- Cedar values ------------------------------------------------------------------


def _decimal(value: float | int) -> Any:
    """A JSON number as a Cedar decimal (four places, Cedar's precision)."""
    text = format(Decimal(str(value)).quantize(Decimal("0.0001")), "f")
    return {"__extn": {"fn": "decimal", "arg": text}}


def _is_number_type(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "number" or (isinstance(kind, list) and "number" in kind)


def _value(value: Any, schema: dict[str, Any] | None) -> Any:
    """JSON to Cedar: fields the schema types as "number" become decimals, so money
    compares the same whether it was sent as 50 or 42.5; integers stay Longs."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        as_decimal = _is_number_type(schema) or isinstance(value, float)
        if as_decimal and math.isfinite(value) and abs(value) < 9e14:
            return _decimal(value)
        # Cedar's Long is 64-bit: anything bigger (or not finite) can only be compared as text.
        return (
            int(value)
            if math.isfinite(value) and float(value).is_integer() and abs(value) < 2**63
            else str(value)
        )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: _value(v, props.get(k)) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else None
        return [_value(v, items) for v in value if v is not None]
    return str(value)


_CONTEXT_SCHEMA: dict[str, Any] = {
    "properties": {
        "tokens": {"type": "integer"},
        "tool_calls": {"type": "integer"},
        "cost_usd": {"type": "number"},
    }
}


def cedar_context(
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
    paths: Paths | None = None,
) -> dict[str, Any]:
    """Cedar's context: the proposal's context fields, and its payload under ``payload``,
    cut down to the ``paths`` the policies read (all of it when None)."""
    raw = project({**context, "payload": payload}, paths)
    fields = {name: value for name, value in raw.items() if name != "payload"}
    out = _value(fields, _CONTEXT_SCHEMA)
    if "payload" in raw:
        out["payload"] = _value(raw["payload"], action_type.payload_schema)
    return out


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


def agent_entities(agent: Agent, granted: Iterable[str], action_type: ActionType) -> list[dict[str, Any]]:
    return [
        {
            "uid": _ref("Agent", agent.id),
            "attrs": {
                "name": agent.name,
                "granted": [{"__entity": _ref("ActionType", g)} for g in sorted(set(granted))],
            },
            "parents": [],
        },
        action_type_entity(action_type),
    ]


def action_type_entity(action_type: ActionType) -> dict[str, Any]:
    attrs: dict[str, Any] = {"risk": action_type.risk}
    if action_type.approver_role:
        attrs["approver_group"] = {"__entity": _ref("Group", action_type.approver_role)}
    return {"uid": _ref("ActionType", action_type.name), "attrs": attrs, "parents": []}


def reviewer_entities(sub: str, groups: Iterable[str], action_type: ActionType) -> list[dict[str, Any]]:
    groups = sorted(set(groups))
    return [
        {"uid": _ref("Reviewer", sub), "attrs": {}, "parents": [_ref("Group", g) for g in groups]},
        *({"uid": _ref("Group", g), "attrs": {}, "parents": []} for g in groups),
        action_type_entity(action_type),
    ]


@lru_cache(maxsize=4096)
def _entities(entities_json: str) -> cedarpy.Entities:
    """Parsed entity sets by their JSON: the same agent, grants and action type come back
    on every proposal, and a parsed handle saves Cedar re-reading them each time."""
    return cedarpy.Entities.from_json_str(entities_json)


def _answers(
    policies: Compiled,
    principal: dict[str, str],
    actions: list[str],
    resource: str,
    context: dict[str, Any],
    entities: list[dict[str, Any]],
) -> list[Answer]:
    # Context as a JSON string (cedarpy accepts one): orjson once, not json.dumps per request.
    context_json = orjson.dumps(context).decode()
    requests = [
        {
            "principal": principal,
            "action": _ref("Action", action),
            "resource": _ref("ActionType", resource),
            "context": context_json,
        }
        for action in actions
    ]
    entities_json = orjson.dumps(entities).decode()
    results = cedarpy.is_authorized_batch(requests, policies.policy_set, _entities(entities_json))
    return [
        Answer(
            r.allowed,
            [_name(policies, reason) for reason in r.diagnostics.reasons],
            list(r.diagnostics.errors),
        )
        for r in results
    ]


def _name(policies: Compiled, cedar_id: str) -> str:
    """``policy3`` -> the fourth policy's ``@id``."""
    if cedar_id.startswith("policy") and cedar_id[6:].isdigit():
        index = int(cedar_id[6:])
        if index < len(policies.ids):
            return policies.ids[index]
    return cedar_id


# --- the two questions ---------------------------------------------------------------


def evaluate_proposal(
    policies: Compiled,
    agent: Agent,
    granted: Iterable[str],
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> tuple[GateOutcome, Answer, Answer]:
    propose, execute = _answers(
        policies,
        _ref("Agent", agent.id),
        ["propose", "execute"],
        action_type.name,
        cedar_context(action_type, payload, context, policies.context_paths),
        agent_entities(agent, granted, action_type),
    )
    errors = propose.errors + execute.errors
    if not propose.allowed:
        return GateOutcome(policies.version, "deny", propose.policy_ids, errors), propose, execute
    outcome: Outcome = "execute" if execute.allowed else "propose"
    ids = list(dict.fromkeys(propose.policy_ids + execute.policy_ids))
    return GateOutcome(policies.version, outcome, ids, errors), propose, execute


def evaluate_approval(
    policies: Compiled,
    sub: str,
    groups: Iterable[str],
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> ApprovalOutcome:
    (answer,) = _answers(
        policies,
        _ref("Reviewer", sub),
        ["approve"],
        action_type.name,
        cedar_context(action_type, payload, context, policies.context_paths),
        reviewer_entities(sub, groups, action_type),
    )
    return ApprovalOutcome(answer.allowed, policies.version, answer.policy_ids, answer.errors)


def granted_types(session: Session, agent_id: str) -> list[str]:
    return list(session.exec(select(Grant.action_type).where(Grant.agent_id == agent_id)).all())


def judge_proposal(
    session: Session,
    agent: Agent,
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> GateOutcome:
    """One proposal judged on its own (placement reads the policy and grants once per batch)."""
    with session.no_autoflush:
        policies = compiled(session)
        granted = granted_types(session, agent.id)
    return judge(policies, agent, granted, action_type, payload, context)


def judge(
    policies: Compiled | None,
    agent: Agent,
    granted: list[str],
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> GateOutcome:
    """The verdict on one proposal, from the policy and grants read once for its batch."""
    if policies is None:
        # No policy at all (never after migration 0002): a human decides everything.
        return GateOutcome(version=None, outcome="propose")
    return evaluate_proposal(policies, agent, granted, action_type, payload, context)[0]


def judge_approval(
    session: Session,
    user: User,
    agent: Agent,
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> ApprovalOutcome:
    with session.no_autoflush:
        policies = compiled(session)
    if policies is None:
        return ApprovalOutcome(allowed=False, version=None)
    return evaluate_approval(policies, user.sub, user.groups, action_type, payload, context)


def has_quorum_rules(session: Session) -> bool:
    """Whether the current policy can raise any proposal's quorum (cheap: one small query)."""
    with session.no_autoflush:
        policies = compiled(session)
    return policies is not None and any(policies.quorums)


def quorum(
    session: Session, agent: Agent, action_type: ActionType, payload: dict[str, Any], context: dict[str, Any]
) -> int:
    """The approvals policy asks of this proposal: the largest ``@approvals_required`` of
    the ``quorum`` permits that match it; 0 when none does (then the action type's
    number holds). A policy without such annotations costs no Cedar call."""
    with session.no_autoflush:
        policies = compiled(session)
    if policies is None or not any(policies.quorums):
        return 0
    granted = granted_types(session, agent.id)
    (answer,) = _answers(
        policies,
        _ref("Agent", agent.id),
        ["quorum"],
        action_type.name,
        cedar_context(action_type, payload, context, policies.context_paths),
        agent_entities(agent, granted, action_type),
    )
    if not answer.allowed:
        return 0
    index = {name: n for name, n in zip(policies.ids, policies.quorums, strict=False)}
    return max((index.get(pid) or 0 for pid in answer.policy_ids), default=0)


@lru_cache(maxsize=32)
def compile_draft(text: str) -> Compiled:
    """A draft's parse for dry runs (cached by text, so a console's repeated tests are cheap)."""
    return compile_text(text)
