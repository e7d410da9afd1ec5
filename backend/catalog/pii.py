"""Personal data in payloads: the fields an action type's schema marks ``"x-pii": true``.

Paths are dotted (``customer.email``), with ``[]`` for every item of a list
(``contacts[].phone``); masking replaces each such value with :data:`MASK`.
"""

from typing import Any

MASK = "[masked]"


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
