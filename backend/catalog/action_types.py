"""Action types and the validation of payloads against their JSON Schema."""

from functools import lru_cache
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.core.errors import ApiError, not_found
from models.action_types import ActionType, ActionTypeUpdate
from models.audit import AuditAction
from models.common import utcnow


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


@lru_cache(maxsize=256)
def _fast_check(schema_json: bytes) -> jsonschema_rs.Draft202012Validator | None:
    """None when jsonschema-rs will not take a schema the reference accepted: then only
    the reference validates. ``offline``: a schema's $ref must never fetch a URL."""
    try:
        schema = orjson.loads(schema_json)
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)
    except (ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
        return None


def validate_payload(action_type: ActionType, payload: dict[str, Any], field: str = "payload") -> None:
    """Raise 422 ``invalid_payload`` naming the first offending field.

    jsonschema-rs (Rust, ~70x faster) answers whether the payload is valid, on every
    proposal; the reference implementation explains only the rare refusal, so the
    error's wording and field path stay those of the ``jsonschema`` package.
    """
    schema_json = orjson.dumps(action_type.payload_schema, option=orjson.OPT_SORT_KEYS)
    fast = _fast_check(schema_json)
    if fast is not None and fast.is_valid(payload):
        return
    validator = _validator(schema_json)
    error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: list(e.path))), None)
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path = ".".join(p for p in (path, missing) if p)
    elif error.validator == "additionalProperties" and "'" in error.message:
        path = ".".join(p for p in (path, error.message.split("'")[1]) if p)
    param = f"{field}.{path}" if path else field
    raise ApiError(422, "invalid_payload", f"{param}: {error.message}", param=param)


def get(session: Session, name: str) -> ActionType | None:
    return session.get(ActionType, name)


def require(session: Session, name: str) -> ActionType:
    row = session.get(ActionType, name)
    if row is None:
        raise not_found("action type", name)
    return row


def list_all(session: Session) -> list[ActionType]:
    return list(session.exec(select(ActionType).order_by(ActionType.name)).all())


def put(session: Session, name: str, spec: ActionTypeUpdate, actor: str) -> ActionType:
    try:
        Draft202012Validator.check_schema(spec.payload_schema)
    except SchemaError as exc:
        raise ApiError(
            422, "invalid_schema", f"payload_schema: {exc.message}", param="payload_schema"
        ) from exc
    if spec.result_schema is not None:
        try:
            Draft202012Validator.check_schema(spec.result_schema)
        except SchemaError as exc:
            raise ApiError(
                422, "invalid_schema", f"result_schema: {exc.message}", param="result_schema"
            ) from exc
    known = set((spec.payload_schema.get("properties") or {}).keys())
    unknown = [f for f in spec.editable_fields or [] if f not in known]
    if unknown and known:
        raise ApiError(
            422,
            "unknown_field",
            f"editable_fields names field(s) the schema does not have: {', '.join(unknown)}.",
            param="editable_fields",
        )
    codes = [c.code for c in spec.reason_codes]
    if len(codes) != len(set(codes)):
        raise ApiError(422, "duplicate_reason_code", "Reason codes must be unique.", param="reason_codes")
    row = session.get(ActionType, name)
    values = spec.model_dump(mode="json")
    if row is None:
        row = ActionType(name=name, **values)
        action = AuditAction.ACTION_TYPE_CREATED
    else:
        schema_changed = row.payload_schema != values["payload_schema"]
        for key, value in values.items():
            setattr(row, key, value)
        row.version += 1 if schema_changed else 0
        row.updated_at = utcnow()
        action = AuditAction.ACTION_TYPE_UPDATED
    session.add(row)
    session.flush()
    audit.record(session, actor, action, f"action_type:{name}", {"version": row.version, **values})
    return row


def reason_code_set(action_type: ActionType, include_retired: bool = False) -> set[str]:
    return {c["code"] for c in action_type.reason_codes if include_retired or not c.get("retired", False)}
