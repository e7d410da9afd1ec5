"""schemathesis over the whole OpenAPI document, as every role: no answer may be a 5xx.

Every operation the API publishes is fuzzed, so endpoints added later are covered without
changing this file. ``SIGNOFF_FUZZ_EXAMPLES`` bounds the examples per operation and role
(small in ``make test``, larger in ``make fuzz``). The server and database are this
module's own: an admin's fuzzed requests engage the kill switch and revoke keys.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.support import databases
from tests.support.databases import Database
from tests.support.env import CLIENT_ID, pointed_at, server_env
from tests.support.factories import make_agent
from tests.support.servers import ApiServer, OidcProvider

EXAMPLES = int(os.environ.get("SIGNOFF_FUZZ_EXAMPLES", "3"))
ROLES = ("agent", "reviewer", "auditor", "admin")  # the admin last: it may stop everyone


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, oidc: OidcProvider
) -> Iterator[tuple[ApiServer, Database]]:
    db = databases.create(request.param, Path(tmp_path_factory.mktemp("fuzz")))
    server = ApiServer(server_env(db, oidc.issuer))
    try:
        yield server, db
    finally:
        server.close()
        databases.drop(db)


def _headers(role: str, db: Database, oidc: OidcProvider) -> dict[str, str]:
    if role == "agent":
        with pointed_at(db):
            return make_agent().headers
    groups = {"reviewer": ["reviewer", "support_refunds"], "auditor": ["auditor"], "admin": ["admin"]}[role]
    return {"Authorization": f"Bearer {oidc.id_token(f'fuzz-{role}', groups, CLIENT_ID)}"}


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("role", ROLES)
def test_no_server_errors(role: str, fuzz_server: tuple[ApiServer, Database], oidc: OidcProvider) -> None:
    server, db = fuzz_server
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    headers = _headers(role, db, oidc)
    failures: list[str] = []
    for operation in _operations(schema):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # collect failures; no shrinking
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            operation = case.operation
            if isinstance(case.query, dict) and "wait" in case.query:
                case.query["wait"] = 0  # long-polls: answer at once
            try:
                response = case.call(base_url=server.url, headers=headers, timeout=30)
            except Exception as exc:  # a dropped connection is a crash too
                failures.append(f"{operation.label}: {type(exc).__name__} {exc}")
                return
            if response.status_code >= 500:
                body = response.text[:300]
                curl = case.as_curl_command()
                failures.append(f"{operation.label}: {response.status_code} {body}\n  {curl}")

        fuzz()
    assert not failures, "\n".join(failures[:20])
