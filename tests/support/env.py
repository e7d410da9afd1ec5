"""How tests and benchmarks configure the API: OIDC client id, server environment, in-process settings."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.databases import Database

CLIENT_ID = "signoff-test"
# The test webhook receivers (tests/support/webhook_receiver.py) listen on loopback, which
# webhooks may not reach by default (backend/webhooks/targets.py): the test servers
# allow-list exactly that address, nothing else internal.
WEBHOOK_RECEIVERS = "127.0.0.1"
# One key directory for the test process, its servers and its CLI runs, whatever the cwd:
# they must share the signing and audit keys (generated there on first use).
KEY_DIR = str(Path(__file__).resolve().parents[2] / "signoff-keys")


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
        "SIGNOFF_WEBHOOK_ALLOWLIST": WEBHOOK_RECEIVERS,
        "SIGNOFF_KEY_DIR": os.environ.get("SIGNOFF_KEY_DIR", KEY_DIR),
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
