"""The OpenAPI document says how each operation authenticates, and its examples are valid."""

from typing import Any

import pytest
from fastapi.openapi.utils import get_openapi

from backend.api.openapi import EXAMPLES
from backend.app import create_app
from models.agents import AgentCreate, ApiKeyCreate
from models.proposals import DecisionCreate, ExecutionReport, ProposalCreate
from models.system import KillSwitchUpdate


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app().openapi()


def op(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(schema["paths"][path][method])


def test_security_schemes_for_api_keys_and_oidc(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["idToken"]["bearerFormat"] == "JWT"
    assert schemes["oidc"]["type"] == "openIdConnect"
    assert schemes["oidc"]["openIdConnectUrl"].endswith("/.well-known/openid-configuration")


def test_each_operation_names_who_may_call_it(schema: dict[str, Any]) -> None:
    every = [o for ops in schema["paths"].values() for o in ops.values()]
    assert every and all("security" in o for o in every)
    assert op(schema, "post", "/v1/proposals")["security"] == [{"apiKey": []}]
    assert op(schema, "get", "/v1/proposals/{proposal_id}/decision")["security"] == [{"apiKey": []}]
    people = [{"idToken": []}, {"oidc": ["openid"]}]
    assert op(schema, "post", "/v1/proposals/{proposal_id}/decisions")["security"] == people
    assert op(schema, "get", "/v1/queue")["security"] == people
    # Read by the agent that placed it or by a reviewer.
    assert op(schema, "get", "/v1/proposals/{proposal_id}")["security"] == [{"apiKey": []}, *people]
    assert op(schema, "get", "/healthz")["security"] == []


MODELS = {
    ("post", "/v1/proposals"): ProposalCreate,
    ("post", "/v1/proposals/{proposal_id}/decisions"): DecisionCreate,
    ("post", "/v1/proposals/{proposal_id}/execution"): ExecutionReport,
    ("post", "/v1/agents"): AgentCreate,
    ("post", "/v1/agents/{agent_id}/keys"): ApiKeyCreate,
    ("post", "/v1/kill-switch"): KillSwitchUpdate,
}


@pytest.mark.parametrize(("method", "path"), list(EXAMPLES))
def test_examples_are_valid_requests(schema: dict[str, Any], method: str, path: str) -> None:
    example = op(schema, method, path)["requestBody"]["content"]["application/json"]["example"]
    assert example == EXAMPLES[(method, path)]
    MODELS[(method, path)].model_validate(example)  # raises when the example drifts from the model


def test_only_additions_to_what_fastapi_writes(schema: dict[str, Any]) -> None:
    app = create_app()
    plain = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    assert plain["paths"].keys() == schema["paths"].keys()
    for path, ops in plain["paths"].items():
        for method, operation in ops.items():
            ours = dict(schema["paths"][path][method])
            ours.pop("security")
            if "requestBody" in ours and (method, path) in EXAMPLES:
                ours["requestBody"] = {**ours["requestBody"]}
                content = dict(ours["requestBody"]["content"]["application/json"])
                content.pop("example")
                ours["requestBody"]["content"] = {"application/json": content}
            assert ours == operation
    assert plain["components"]["schemas"] == schema["components"]["schemas"]
