"""The OpenAPI document: FastAPI's, plus how each operation authenticates and examples.

Who may call a route is already written once, in its dependencies (`backend/api/deps.py`);
the security requirement of each operation is read from them here, so the document cannot
drift from the code. Agents send an API key, people an OIDC ID token; both as Bearer.
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from backend.api import deps
from backend.core.settings import Settings

AGENT = [{"apiKey": []}]
PERSON = [{"idToken": []}, {"oidc": ["openid"]}]

_AGENT_DEPS = {deps._current_agent, deps._placing_agent, deps._active_agent, deps._waiting_key}
_PERSON_DEPS = {deps._current_user}
_EITHER_DEPS = {deps._caller}


def security_schemes(settings: Settings) -> dict[str, Any]:
    return {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "so_...",
            "description": "An agent's API key (`signoff keys create AGENT`), as `Bearer so_...`.",
        },
        "idToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A person's OIDC ID token (not an access token) from the configured issuer, "
                "audience the console's client id. When groups come from /userinfo, send the "
                "access token too, in `X-Signoff-Access-Token` (docs/identity.md)."
            ),
        },
        "oidc": {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration",
            "description": "Where people's ID tokens come from; send the ID token as Bearer.",
        },
    }


# Request examples for the main operations, by (method, path).
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/proposals"): {
        "action_type": "refund",
        "payload": {
            "customer_id": "cus_123",
            "order_id": "ord_9f2c",
            "amount_usd": 42.5,
            "currency": "USD",
            "reason": "Package arrived damaged",
        },
        "summary": "Refund $42.50 for ord_9f2c",
        "evidence": [
            {"kind": "message", "title": "Customer email", "content": "My blender arrived cracked."},
            {"kind": "record", "title": "Order", "content": {"order_id": "ord_9f2c", "total": 120.0}},
        ],
        "context": {"model": "gpt-4.1", "prompt_version": "refunds-v3", "run_id": "run-1"},
        "expires_in_seconds": 3600,
    },
    ("post", "/v1/proposals/{proposal_id}/decisions"): {
        "verdict": "approve",
        "reason_codes": [],
        "comment": "Photo confirms the damage.",
        "edited_payload": {
            "customer_id": "cus_123",
            "order_id": "ord_9f2c",
            "amount_usd": 40.0,
            "currency": "USD",
            "reason": "Package arrived damaged",
        },
    },
    ("post", "/v1/proposals/{proposal_id}/execution"): {
        "status": "succeeded",
        "result": {"refund_id": "re_77"},
    },
    ("post", "/v1/agents"): {
        "name": "refund-bot",
        "owner": "support-eng@example.com",
        "grants": ["refund"],
        "dials": {"refund": "approve"},
    },
    ("post", "/v1/agents/{agent_id}/keys"): {"name": "production", "expires_in_days": 90},
    ("post", "/v1/kill-switch"): {"engaged": True, "reason": "Refund bot misbehaving"},
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def security_of(route: APIRoute) -> list[dict[str, list[str]]]:
    """The operation's security requirement, from the route's dependencies; [] for public."""
    calls = set(_calls(route.dependant))
    agent, person = bool(calls & _AGENT_DEPS), bool(calls & _PERSON_DEPS)
    if calls & _EITHER_DEPS:
        agent = person = True
    return (AGENT if agent else []) + (PERSON if person else [])


def api_routes(app: FastAPI) -> Iterator[tuple[APIRoute, str]]:
    """Each API route with its path as served (newer FastAPIs keep included routers nested)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route, route.path_format
        return
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield route, context.path_format or route.path_format


def install(app: FastAPI, settings: Settings) -> None:
    """Replace `app.openapi` by one that adds the security schemes and examples (additive:
    every path and schema FastAPI writes stays as it is)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = security_schemes(settings)
        for route, path in api_routes(app):
            for method in route.methods:
                op = schema["paths"].get(path, {}).get(method.lower())
                if op is None:
                    continue
                op["security"] = security_of(route)
                example = EXAMPLES.get((method.lower(), path))
                content = op.get("requestBody", {}).get("content", {}).get("application/json")
                if example is not None and content is not None:
                    content["example"] = example
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
