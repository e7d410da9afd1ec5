"""SQLModel tables and pydantic wire schemas, one module per domain.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic and
tests rely on that).
"""

from models import (  # noqa: F401
    action_types,
    agents,
    audit,
    common,
    evals,
    idempotency,
    policies,
    proposals,
    system,
    webhooks,
)
