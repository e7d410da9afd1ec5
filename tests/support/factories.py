"""Factories for rows and request bodies, so tests say only what matters to them."""

import uuid
from dataclasses import dataclass
from typing import Any

from backend.agents import keys, lookup
from backend.agents import service as agents
from backend.core.db import transaction
from models.agents import AgentCreate, ApiKeyCreate, Dial


@dataclass(frozen=True)
class AgentCreds:
    id: str
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_agent(
    grants: tuple[str, ...] = ("refund",), dials: dict[str, Dial] | None = None, name: str | None = None
) -> AgentCreds:
    """An agent with one live API key, created through the services (as the CLI does)."""
    name = name or f"agent-{uuid.uuid4().hex[:10]}"
    with transaction() as session:
        view = agents.create(
            session, AgentCreate(name=name, grants=list(grants), dials=dials or {}), "system:test"
        )
        agent = lookup.find(session, view["id"])
        created = keys.create_key(session, agent, ApiKeyCreate(), "system:test")
    return AgentCreds(view["id"], name, created.key)


def refund_payload(amount: float = 42.5, **overrides: Any) -> dict[str, Any]:
    payload = {
        "customer_id": "cus_123",
        "order_id": f"ord_{uuid.uuid4().hex[:8]}",
        "amount_usd": amount,
        "currency": "USD",
        "reason": "Package arrived damaged",
    }
    payload.update(overrides)
    return payload


def refund_proposal(amount: float = 42.5, **overrides: Any) -> dict[str, Any]:
    payload = refund_payload(amount)
    body: dict[str, Any] = {
        "action_type": "refund",
        "payload": payload,
        "summary": f"Refund ${amount} for {payload['order_id']}",
        "evidence": [
            {
                "kind": "message",
                "title": "Customer email",
                "content": "My blender arrived cracked. I'd like my money back please.",
            },
            {
                "kind": "record",
                "title": "Order",
                "content": {"order_id": payload["order_id"], "total": 120.0},
            },
            {"kind": "tool_call", "title": "lookup_order", "content": {"args": {"id": payload["order_id"]}}},
        ],
        "context": {
            "model": "gpt-test",
            "prompt_version": "refunds-v3",
            "tool_schema_version": "7",
            "trace_id": uuid.uuid4().hex,
            "run_id": "run-1",
            "tokens": 1200,
            "tool_calls": 3,
            "cost_usd": 0.012,
        },
    }
    body.update(overrides)
    return body


DENY_POLICY_ID = "forbid-refunds-to-blocked-customers"


def default_policy_text() -> str:
    from tests.support.servers import ROOT

    return (ROOT / "backend" / "policies" / "default.cedar").read_text()


def policy_with_deny() -> str:
    """The default policy plus one forbid, so a test can reach the "deny" outcome."""
    return default_policy_text() + (
        f'\n@id("{DENY_POLICY_ID}")\n'
        'forbid (principal, action == Action::"propose", resource == ActionType::"refund")\n'
        'when { context.payload.customer_id == "cus_blocked" };\n'
    )


def apply_policy(text: str, comment: str = "test") -> int:
    """Make ``text`` the current policy version (through the service, as PUT does)."""
    from backend.controls.policy import versions as policies

    with transaction() as session:
        return int(policies.replace(session, text, comment, "system:test")["version"])


def make_action_type(name: str | None = None, schema: dict[str, Any] | None = None, **fields: Any) -> str:
    """A refund-like action type of a test's own (so its rules change no other test's), with
    the refund's schema and reason codes unless told otherwise; approvers need support_refunds."""
    from backend.catalog import action_types
    from models.action_types import ActionTypeUpdate

    name = name or f"refund_{uuid.uuid4().hex[:8]}"
    with transaction() as session:
        refund = action_types.require(session, "refund")
        spec = {
            "payload_schema": schema or refund.payload_schema,
            "approver_role": "support_refunds",
            "reason_codes": refund.reason_codes,
            "editable_fields": refund.editable_fields,
            **fields,
        }
        action_types.put(session, name, ActionTypeUpdate.model_validate(spec), "system:test")
    return name


def person(oidc: Any, sub: str, groups: list[str], name: str | None = None) -> dict[str, str]:
    """Headers for a person with these groups (an ID token from the test provider)."""
    from tests.support.env import CLIENT_ID

    return {"Authorization": f"Bearer {oidc.id_token(sub, groups, CLIENT_ID, name=name or sub)}"}
