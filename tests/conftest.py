"""Fixtures: databases (SQLite and PostgreSQL), an OIDC provider, API server processes."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import databases
from tests.databases import Database
from tests.factories import AgentCreds, make_agent
from tests.servers import ApiServer, OidcProvider, free_port

CLIENT_ID = "signoff-test"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def server_env(db: Database, issuer: str, **extra: str) -> dict[str, str]:
    return {
        "SIGNOFF_DATABASE_URL": db.url,
        "SIGNOFF_OIDC_ISSUER": issuer,
        "SIGNOFF_OIDC_CLIENT_ID": CLIENT_ID,
        "SIGNOFF_EXPIRY_SWEEP_SECONDS": "0.5",
        "SIGNOFF_LOG_LEVEL": "WARNING",
        # Webhook retries in tenths of a second, and a short timeout for hanging receivers.
        "SIGNOFF_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "SIGNOFF_WEBHOOK_TIMEOUT_SECONDS": "1",
        "SIGNOFF_WEBHOOK_POLL_SECONDS": "0.2",
        **extra,
    }


@contextmanager
def pointed_at(db: Database) -> Iterator[None]:
    """Point in-process services (factories, direct service calls) at `db`."""
    from backend.core.db import reset_engine
    from backend.core.settings import get_settings

    previous = os.environ.get("SIGNOFF_DATABASE_URL")
    os.environ["SIGNOFF_DATABASE_URL"] = db.url
    get_settings.cache_clear()
    reset_engine()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SIGNOFF_DATABASE_URL", None)
        else:
            os.environ["SIGNOFF_DATABASE_URL"] = previous
        get_settings.cache_clear()
        reset_engine()


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


# The console's browser fixtures (console, browser, page): one Streamlit process per database,
# shared by every console test module. Imported last: they use CLIENT_ID above.
from tests.console_fixtures import browser, console, page  # noqa: E402, F401
