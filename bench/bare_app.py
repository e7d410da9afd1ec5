"""The baseline for bench/ingest.py: a bare FastAPI endpoint inserting the same proposal row.

No authentication, validation, idempotency, policy or audit: what is left is the cost of
HTTP, JSON and one INSERT, which is the floor Signoff's own endpoint is compared with.
"""

import os
from datetime import timedelta
from typing import Any

from fastapi import Body, FastAPI

from backend.core.db import make_engine
from models.common import new_id, utcnow
from models.proposals import Proposal

engine = make_engine(os.environ["SIGNOFF_DATABASE_URL"])
table = Proposal.__table__  # type: ignore[attr-defined]
AGENT_ID = os.environ["BENCH_AGENT_ID"]
app = FastAPI()


@app.post("/bare/proposals", status_code=201)
def create(body: dict[str, Any] = Body(...)) -> dict[str, str]:
    now = utcnow()
    row = {
        "id": new_id(),
        "agent_id": AGENT_ID,
        "action_type": body["action_type"],
        "action_type_version": 1,
        "summary": body.get("summary", ""),
        "payload": body["payload"],
        "evidence": body.get("evidence", []),
        "context": body.get("context", {}),
        "status": "pending",
        "mode": "approve",
        "dial": "approve",
        "policy_outcome": "propose",
        "policy_ids": [],
        "flags": [],
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(days=1),
    }
    with engine.begin() as conn:
        conn.execute(table.insert(), row)
    return {"id": row["id"]}
