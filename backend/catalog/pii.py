"""Personal data in payloads: the fields an action type's schema marks ``"x-pii": true``.

Paths are dotted (``customer.email``), with ``[]`` for every item of a list
(``contacts[].phone``); masking replaces each such value with :data:`MASK`.

This is the one masking rule for every read (proposal, queue, decisions, audit, export,
webhooks): :func:`may_unmask` says who sees the values (the ``SIGNOFF_UNMASK_ROLE``
setting, admins by default) and :func:`masked` gives the copy everyone else sees.
Agents read their own proposals in clear: the values came from them, and they execute
the approved payload.
"""

import copy
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from backend.core.settings import get_settings
from models.action_types import ActionType
from models.proposals import Proposal

MASK = "***"


def may_unmask(groups: tuple[str, ...] | list[str]) -> bool:
    """Whether a person with these groups sees ``x-pii`` values in clear."""
    return get_settings().unmask_role in groups


def masked(payload: dict[str, Any] | None, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``payload`` with the schema's ``x-pii`` fields masked (the same object when
    the schema marks none, so an unmarked action type costs nothing)."""
    if payload is None or not schema:
        return payload
    paths = pii_paths(schema)
    if not paths:
        return payload
    out = copy.deepcopy(payload)
    mask_payload(out, paths)
    return out


def restore_masked(edited: dict[str, Any], current: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """An edit made on a masked view: a top-level ``x-pii`` field still reading :data:`MASK`
    was left alone by the reviewer, so it keeps the current value."""
    out = dict(edited)
    for path in pii_paths(schema):
        if "." not in path and "[" not in path and out.get(path) == MASK and path in current:
            out[path] = current[path]
    return out


def pii_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the payload fields the schema marks with ``"x-pii": true``."""
    paths: list[str] = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        path = f"{prefix}{name}"
        if prop.get("x-pii") is True:
            paths.append(path)
        elif prop.get("type") == "object" or "properties" in prop:
            paths.extend(pii_paths(prop, f"{path}."))
        elif isinstance(prop.get("items"), dict) and prop["items"].get("x-pii") is True:
            paths.append(f"{path}[]")
        elif isinstance(prop.get("items"), dict):
            paths.extend(pii_paths(prop["items"], f"{path}[]."))
    return paths


def _mask(value: Any, parts: list[str]) -> bool:
    """Replace the value at `parts` in place; True if something was there to mask."""
    if not parts:
        return False
    head, rest = parts[0], parts[1:]
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    if not isinstance(value, dict) or key not in value:
        return False
    if is_list and isinstance(value[key], list):
        if not rest:
            value[key] = [MASK for _ in value[key]]
            return bool(value[key])
        return any([_mask(item, rest) for item in value[key]])
    if not rest:
        value[key] = MASK
        return True
    return _mask(value[key], rest)


def mask_payload(payload: dict[str, Any] | None, paths: list[str]) -> list[str]:
    if payload is None:
        return []
    return [p for p in paths if _mask(payload, p.split("."))]


_PAYLOAD_KEYS = ("payload", "edited_payload")


def masked_event_data(data: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """An audit or webhook event's data with the payloads it carries masked: ``payload``,
    ``edited_payload`` and the attached ``proposal``'s payload."""
    if not schema or not pii_paths(schema):
        return data
    out = dict(data)
    for key in _PAYLOAD_KEYS:
        if isinstance(out.get(key), dict):
            out[key] = masked(out[key], schema)
    proposal = out.get("proposal")
    if isinstance(proposal, dict) and isinstance(proposal.get("payload"), dict):
        out["proposal"] = {**proposal, "payload": masked(proposal["payload"], schema)}
    return out


def masked_audit_items(session: Session, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit events as a reader without the unmask right sees them: the payloads in each
    proposal's events masked by its action type's schema."""
    ids = {i["subject"].split(":", 1)[1] for i in items if str(i.get("subject", "")).startswith("proposal:")}
    if not ids:
        return items
    rows = session.execute(
        select(Proposal.id, ActionType.payload_schema)
        .join(ActionType, ActionType.name == Proposal.action_type)  # type: ignore[arg-type]
        .where(Proposal.id.in_(ids))  # type: ignore[attr-defined]
    ).all()
    schemas = {pid: schema for pid, schema in rows}
    out = []
    for item in items:
        subject = str(item.get("subject", ""))
        schema = schemas.get(subject.split(":", 1)[1]) if subject.startswith("proposal:") else None
        out.append({**item, "data": masked_event_data(item.get("data") or {}, schema)} if schema else item)
    return out
