"""Cedar gets only the context paths the policies read, and must answer exactly as with all of it."""

from typing import Any

import cedarpy
import pytest

from backend.controls.policy.paths import context_paths, project
from tests.support.factories import default_policy_text

DEFAULT = default_policy_text()

POLICIES = {
    "default": DEFAULT,
    "has and nested": """
        permit(principal, action == Action::"propose", resource)
        when { context has tokens && context.tokens < 1000 }
        when { context.payload.amount_usd.lessThan(decimal("50")) };
        forbid(principal, action, resource)
        when { context.payload has note && context.payload.note like "*urgent*" };
    """,
    "missing attribute errors": """
        permit(principal, action, resource) when { context.payload.nope > 1 };
        permit(principal, action, resource) when { context.tool_calls.deep == 1 };
    """,
    "whole record": 'permit(principal, action, resource) when { context.payload == {"currency": "USD"} };',
    "whole context": 'forbid(principal, action, resource) unless { context == {"tokens": 5} };',
}

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"tokens": 12, "tool_calls": 3, "model": "m", "trace_id": "t", "payload": {"currency": "USD"}},
    {
        "tokens": 5000,
        "cost_usd": {"__extn": {"fn": "decimal", "arg": "0.0120"}},
        "payload": {
            "amount_usd": {"__extn": {"fn": "decimal", "arg": "42.5000"}},
            "currency": "USD",
            "note": "this is urgent",
            "nope": 7,
        },
    },
    {"tokens": 5},
    {"tool_calls": {"deep": 1}, "payload": {"amount_usd": {"__extn": {"fn": "decimal", "arg": "10.0000"}}}},
]


def _answer(policies: cedarpy.PolicySet, action: str, context: dict[str, Any]) -> tuple[Any, ...]:
    request = {
        "principal": {"type": "Agent", "id": "a"},
        "action": {"type": "Action", "id": action},
        "resource": {"type": "ActionType", "id": "refund"},
        "context": context,
    }
    (result,) = cedarpy.is_authorized_batch([request], policies, [])
    return result.allowed, sorted(result.diagnostics.reasons), sorted(result.diagnostics.errors)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_projected_context_gets_the_same_answers(name: str) -> None:
    text = POLICIES[name]
    policies = cedarpy.PolicySet.from_str(text)
    paths = context_paths(text)
    for context in CONTEXTS:
        for action in ("propose", "execute", "approve"):
            full = _answer(policies, action, context)
            assert _answer(policies, action, project(context, paths)) == full, (context, action)


def test_paths_of_the_default_policy_are_just_the_amount() -> None:
    assert context_paths(DEFAULT) == {"payload": {"amount_usd": True}}


def test_a_policy_reading_the_whole_context_gets_all_of_it() -> None:
    paths = context_paths(POLICIES["whole context"])
    assert paths is None
    context = {"tokens": 5, "model": "m"}
    assert project(context, paths) is context


def test_a_record_compared_whole_is_sent_whole() -> None:
    paths = context_paths(POLICIES["whole record"])
    assert paths == {"payload": True}
    context = {"tokens": 1, "payload": {"currency": "USD", "amount_usd": 3}}
    assert project(context, paths) == {"payload": {"currency": "USD", "amount_usd": 3}}
