"""Edits within limits: what a reviewer may change in a payload before approving it.

An action type lists its ``editable_fields`` (None: any field) and money (fields its
schema types ``"number"``) may only go down unless it sets ``edits_may_raise_money``. So
a refund's amount can be lowered and its reason reworded, but it cannot be redirected to
another customer or order.
"""

from typing import Any

from backend.core.errors import ApiError
from models.action_types import ActionType


def _is_money(schema: dict[str, Any], field: str) -> bool:
    prop = (schema.get("properties") or {}).get(field)
    if not isinstance(prop, dict):
        return False
    kind = prop.get("type")
    return kind == "number" or (isinstance(kind, list) and "number" in kind)


def changed_fields(current: dict[str, Any], edited: dict[str, Any]) -> list[str]:
    """The top-level fields an edit adds, removes or changes, in a stable order."""
    keys = list(dict.fromkeys([*current, *edited]))
    return [k for k in keys if current.get(k, _MISSING) != edited.get(k, _MISSING)]


_MISSING = object()


def check(action_type: ActionType, current: dict[str, Any], edited: dict[str, Any]) -> list[str]:
    """Raise 422 for an edit beyond the action type's limits; the changed fields otherwise."""
    changed = changed_fields(current, edited)
    allowed = action_type.editable_fields
    for field in changed:
        if allowed is not None and field not in allowed:
            raise ApiError(
                422,
                "field_not_editable",
                f"A reviewer may not edit {field!r}; editable: {', '.join(allowed) or 'none'}.",
                param=f"edited_payload.{field}",
                extra={"editable_fields": list(allowed)},
            )
        if action_type.edits_may_raise_money or not _is_money(action_type.payload_schema, field):
            continue
        before, after = current.get(field), edited.get(field)
        if _number(before) and _number(after) and after > before:  # type: ignore[operator]
            raise ApiError(
                422,
                "amount_increase",
                f"{field} may only go down in an edit (from {before}).",
                param=f"edited_payload.{field}",
            )
    return changed


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
