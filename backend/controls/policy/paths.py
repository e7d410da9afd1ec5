"""Which parts of a request's context a policy set can see, so Cedar is sent only those.

Cedar parses the whole context of every request, and that is most of the cost of a
decision: a refund's context (the payload, tokens, tool calls, cost, model and trace
fields, two of them decimals) takes about three times as long as the one field the
default policy reads. A policy can observe the context only through the attribute
paths it names (``context.payload.amount_usd``, ``context has tokens``), so the context
cut down to those paths gets exactly the same answers, reasons and errors. Where a
policy uses ``context`` as a whole (``context == {...}``), the whole context is sent.
"""

import json
from typing import Any

import cedarpy

# A tree of attribute names; a leaf of True means "the whole value at this path".
Paths = dict[str, Any]
_WHOLE: Paths | None = None


def context_paths(text: str) -> Paths | None:
    """The context paths a policy set reads, or None when it may read all of the context."""
    try:
        policies = json.loads(cedarpy.policies_to_json_str(text))
    except (ValueError, TypeError):
        return _WHOLE
    tree: Paths = {}
    for group in ("staticPolicies", "templates"):
        for policy in (policies.get(group) or {}).values():
            for condition in policy.get("conditions") or []:
                if not _collect(condition.get("body"), tree):
                    return _WHOLE
    return tree


def project(context: dict[str, Any], paths: Paths | None) -> dict[str, Any]:
    """The context cut down to ``paths`` (all of it when ``paths`` is None)."""
    if paths is None:
        return context
    out: dict[str, Any] = {}
    for name, below in paths.items():
        if name not in context:
            continue
        value = context[name]
        out[name] = project(value, below) if below is not True and isinstance(value, dict) else value
    return out


def _context_path(expr: Any) -> list[str] | None:
    """``context.a.b`` as ["a", "b"]; [] for ``context`` itself; None for anything else."""
    if not isinstance(expr, dict):
        return None
    if expr.get("Var") == "context":
        return []
    step = expr.get(".")
    if isinstance(step, dict):
        base = _context_path(step.get("left"))
        if base is not None:
            return [*base, step.get("attr", "")]
    return None


def _add(tree: Paths, path: list[str]) -> None:
    node = tree
    for name in path[:-1]:
        child = node.get(name)
        if child is True:
            return
        node = node.setdefault(name, {})
    if path:
        node[path[-1]] = True


def _collect(expr: Any, tree: Paths) -> bool:
    """Add the context paths ``expr`` reads to ``tree``; False if it reads ``context`` whole."""
    if isinstance(expr, list):
        return all(_collect(item, tree) for item in expr)
    if not isinstance(expr, dict):
        return True
    path = _context_path(expr)
    if path is not None:
        if not path:
            return False
        _add(tree, path)
        return True
    has = expr.get("has")
    if isinstance(has, dict):
        base = _context_path(has.get("left"))
        if base is not None:
            _add(tree, [*base, has.get("attr", "")])
            return True
    return all(_collect(value, tree) for value in expr.values())
