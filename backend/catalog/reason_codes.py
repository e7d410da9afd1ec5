"""Reason codes per action type, managed by admins.

A code is never deleted: retiring it stops reviewers from choosing it, while past
decisions (and exports) keep the code and its label is still there to explain it.
"""

from typing import Any

from sqlmodel import Session

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.core.errors import ApiError
from models.action_types import ActionType
from models.audit import AuditAction
from models.common import utcnow
from models.evals import ReasonCodeCreate


def list_codes(session: Session, name: str, include_retired: bool = True) -> dict[str, Any]:
    row = action_types.require(session, name)
    items = [c for c in row.reason_codes if include_retired or not c.get("retired", False)]
    return {"items": [_public(c) for c in items], "next_cursor": None}


def _public(code: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code["code"],
        "label": code.get("label", code["code"]),
        "description": code.get("description", ""),
        "retired": bool(code.get("retired", False)),
        "retired_at": code.get("retired_at"),
        "retired_by": code.get("retired_by"),
    }


def _find(row: ActionType, code: str) -> int:
    for i, c in enumerate(row.reason_codes):
        if c["code"] == code:
            return i
    raise ApiError(
        404, "resource_missing", f"Action type {row.name!r} has no reason code {code!r}.", param="code"
    )


def _save(session: Session, row: ActionType, codes: list[dict[str, Any]]) -> None:
    row.reason_codes = codes  # a new list, so the JSON column is seen as changed
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


def add(session: Session, name: str, body: ReasonCodeCreate, actor: str) -> dict[str, Any]:
    row = action_types.require(session, name)
    for c in row.reason_codes:
        if c["code"] == body.code:
            hint = " It is retired; restore it instead." if c.get("retired") else ""
            raise ApiError(
                409, "reason_code_exists", f"Reason code {body.code!r} already exists.{hint}", param="code"
            )
    code = {"code": body.code, "label": body.label, "description": body.description, "retired": False}
    _save(session, row, [*row.reason_codes, code])
    audit.record(session, actor, AuditAction.REASON_CODE_ADDED, f"action_type:{name}", code)
    return _public(code)


def set_retired(session: Session, name: str, code: str, retired: bool, actor: str, reason: str = "") -> dict:
    row = action_types.require(session, name)
    i = _find(row, code)
    current = dict(row.reason_codes[i])
    if bool(current.get("retired", False)) == retired:
        return _public(current)
    if retired:
        current.update(retired=True, retired_at=utcnow().isoformat(), retired_by=actor)
    else:
        current.update(retired=False)
        current.pop("retired_at", None)
        current.pop("retired_by", None)
    codes = list(row.reason_codes)
    codes[i] = current
    _save(session, row, codes)
    action = AuditAction.REASON_CODE_RETIRED if retired else AuditAction.REASON_CODE_RESTORED
    audit.record(session, actor, action, f"action_type:{name}", {"code": code, "reason": reason})
    return _public(current)
