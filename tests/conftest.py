"""Fixtures: databases (SQLite and PostgreSQL), an OIDC provider, API server processes."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend import on_commit
from tests.support import databases
from tests.support.databases import Database
from tests.support.env import CLIENT_ID, KEY_DIR, WEBHOOK_RECEIVERS, pointed_at, server_env
from tests.support.factories import AgentCreds, make_agent
from tests.support.servers import ApiServer, OidcProvider, free_port

# The console's browser fixtures (console, browser, page): one Streamlit process per database,
# shared by every console test module.
pytest_plugins = ["tests.support.console_fixtures"]

# In-process service calls commit like the API does: audit, webhooks, wake-ups.
on_commit.install()
# The keys this process shares with its servers and CLI runs (tests/support/env.py), and the
# same webhook allow-list as the servers, for endpoints registered in process.
os.environ.setdefault("SIGNOFF_KEY_DIR", KEY_DIR)
os.environ.setdefault("SIGNOFF_WEBHOOK_ALLOWLIST", WEBHOOK_RECEIVERS)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def oidc() -> Iterator[OidcProvider]:
    provider = OidcProvider(free_port())
    yield provider
    provider.close()


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = databases.create(request.param, tmp_path_factory.mktemp("db"))
    yield db
    databases.drop(db)


@pytest.fixture(params=BACKENDS)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of this test's own, for tests that break or flip global state."""
    db = databases.create(request.param, tmp_path)
    with pointed_at(db):
        yield db
    databases.drop(db)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    with pointed_at(database):
        yield database


@pytest.fixture(scope="session")
def server(database: Database, oidc: OidcProvider) -> Iterator[ApiServer]:
    srv = ApiServer(server_env(database, oidc.issuer))
    yield srv
    srv.close()


@pytest.fixture
def api(server: ApiServer, db: Database) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def agent(db: Database) -> AgentCreds:
    return make_agent()


@pytest.fixture
def lead(oidc: OidcProvider) -> dict[str, str]:
    """A support lead: reviewer with refund rights."""
    token = oidc.id_token("lead", ["reviewer", "support_refunds"], CLIENT_ID, name="Lee Lead")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def reviewer(oidc: OidcProvider) -> dict[str, str]:
    """A reviewer without refund rights."""
    token = oidc.id_token("rita", ["reviewer"], CLIENT_ID, name="Rita Reviewer")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(oidc: OidcProvider) -> dict[str, str]:
    token = oidc.id_token("ada", ["admin"], CLIENT_ID, name="Ada Admin")
    return {"Authorization": f"Bearer {token}"}
