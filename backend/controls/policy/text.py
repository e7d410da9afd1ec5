"""Cedar policy text: parsing, the ids it declares, and where a syntax error sits.

Cedar (through cedarpy) reports a parse error's message but not its position, so the
line is found by parsing prefixes of the text: whole policies first, to find the failing
one, then lines within it (a prefix that stops inside a policy fails with "unexpected
end of input"; the first that fails with anything else ends on the offending line).
"""

import json
import re
from dataclasses import dataclass

import cedarpy

_EOF = "unexpected end of input"
_TOKEN = re.compile(r"`([^`]+)`|: (\S+)$")


@dataclass(frozen=True)
class PolicyError(Exception):
    message: str
    line: int | None
    column: int | None


def _parse_error(text: str) -> str | None:
    try:
        cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        return str(exc) or "cannot parse the policies"
    return None


def _code(line: str) -> str:
    return line.split("//", 1)[0].rstrip()


def _locate(text: str, message: str) -> tuple[int | None, int | None]:
    lines = text.splitlines(keepends=True)
    if not lines:
        return None, None
    # First, the failing policy: the first prefix of whole policies that does not parse.
    ends = [n for n, line in enumerate(lines, 1) if _code(line).endswith(";")]
    first, last = 1, len(lines)
    for end in ends:
        if _parse_error("".join(lines[:end])) is not None:
            last = end
            break
        first = end + 1
    # Then, within it, the first line after which the error is no longer "end of input".
    lo, hi = first, last
    while lo < hi:
        mid = (lo + hi) // 2
        error = _parse_error("".join(lines[:mid]))
        if error is not None and error != _EOF:
            hi = mid
        else:
            lo = mid + 1
    match = _TOKEN.search(message)
    if not match:
        return lo, None
    # Errors like "invalid variable: acton" only show once the policy is complete: walk
    # back through the failing policy to the line that holds the named token.
    token = match.group(1) or match.group(2)
    for number in range(lo, first - 1, -1):
        found = _code(lines[number - 1]).find(token)
        if found >= 0:
            return number, found + 1
    return lo, None


def check(text: str) -> cedarpy.PolicySet:
    """Parse ``text`` or raise :class:`PolicyError` with Cedar's message, line and column."""
    try:
        policy_set = cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        message = str(exc) or "cannot parse the policies"
        line, column = _locate(text, message)
        raise PolicyError(message, line, column) from exc
    ids = policy_ids(text)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PolicyError(f"duplicate @id: {', '.join(duplicates)}", _line_of(text, duplicates[0]), None)
    return policy_set


def _line_of(text: str, policy_id: str) -> int | None:
    needle = f'@id("{policy_id}")'
    positions = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return positions[-1] if positions else None


def policy_ids(text: str) -> list[str]:
    """Each policy's ``@id`` annotation, in order (Cedar's positional id when it has none)."""
    static = json.loads(cedarpy.policies_to_json_str(text)).get("staticPolicies", {})
    ordered = sorted(static.items(), key=lambda kv: int(kv[0][6:]) if kv[0][6:].isdigit() else 0)
    return [(body.get("annotations") or {}).get("id") or key for key, body in ordered]


def approvals_required(text: str) -> list[int | None]:
    """Each policy's ``@approvals_required("N")`` annotation, in order: a ``quorum`` permit
    that matches a proposal raises its quorum to N (see docs/policies.md)."""
    static = json.loads(cedarpy.policies_to_json_str(text)).get("staticPolicies", {})
    ordered = sorted(static.items(), key=lambda kv: int(kv[0][6:]) if kv[0][6:].isdigit() else 0)
    values: list[int | None] = []
    for _key, body in ordered:
        raw = (body.get("annotations") or {}).get("approvals_required")
        values.append(int(raw) if isinstance(raw, str) and raw.isdigit() and 1 <= int(raw) <= 5 else None)
    return values


# --- what Signoff can ask: the entity model every policy is written against ----------

ENTITY_TYPES = frozenset({"Agent", "Reviewer", "Group", "ActionType", "Action"})
ACTIONS = ("propose", "execute", "approve", "quorum")


def _refs(node: object) -> "list[tuple[str, str | None]]":
    """Every entity type (and id, for entity literals) a policy's JSON form mentions."""
    found: list[tuple[str, str | None]] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and isinstance(node.get("id"), str):
            found.append((node["type"], node["id"]))
        if isinstance(node.get("entity_type"), str):
            found.append((node["entity_type"], None))
        for value in node.values():
            found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found


def _where(text: str, kind: str, ident: str | None) -> tuple[int | None, int | None]:
    pattern = re.escape(kind) + (r"\s*::\s*" + re.escape(json.dumps(ident)) if ident is not None else r"\b")
    for number, line in enumerate(text.splitlines(), 1):
        match = re.search(pattern, line.split("//", 1)[0])
        if match:
            return number, match.start() + 1
    return None, None


def lint(text: str, action_types: "set[str] | None" = None) -> None:
    """Schema check: only Signoff's entity types and actions, and (given the names)
    action types that exist. A typo there would otherwise parse, match nothing, and
    silently change who may do what."""
    static = json.loads(cedarpy.policies_to_json_str(text)).get("staticPolicies", {})
    for body in static.values():
        for kind, ident in _refs(body):
            message = None
            if kind not in ENTITY_TYPES:
                message = f"unknown entity type {kind}; policies speak of {', '.join(sorted(ENTITY_TYPES))}"
            elif kind == "Action" and ident is not None and ident not in ACTIONS:
                message = f'unknown action Action::"{ident}"; Signoff asks {", ".join(ACTIONS)}'
            elif kind == "ActionType" and ident is not None and ident not in (action_types or {ident}):
                message = f'unknown action type ActionType::"{ident}"'
            if message:
                line, column = _where(text, kind, ident)
                raise PolicyError(message, line, column)
