"""SQLModel tables and pydantic wire schemas, one module per domain.

The package holds every table module, so importing any part of it makes the whole schema
known: foreign keys between modules (a proposal's agent, say) resolve by table name, and
``metadata`` is what Alembic compares the database with.
"""

from sqlmodel import SQLModel

from models import (
    action_types,
    agents,
    audit,
    common,
    evals,
    idempotency,
    policies,
    proposals,
    receipts,
    system,
    webhooks,
)

metadata = SQLModel.metadata

__all__ = [
    "action_types",
    "agents",
    "audit",
    "common",
    "evals",
    "idempotency",
    "metadata",
    "policies",
    "proposals",
    "receipts",
    "system",
    "webhooks",
]
