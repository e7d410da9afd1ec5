"""SQLModel tables and pydantic wire schemas, one module per domain.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic and
tests rely on that).
"""

import models.webhooks  # noqa: F401
from models import action_types, agents, audit, common, idempotency, proposals, system  # noqa: F401
