"""Approval receipts: a signed, single-use statement of exactly what was approved.

When an approval ends a proposal (a reviewer's, or the policy's in execute mode), a receipt
is issued: a compact JWS (EdDSA, header ``kid``) with the claims ``sub`` (proposal id),
``act`` (action type), ``payload_sha256`` (of the approved payload as canonical JSON,
``backend/core/canonical.py``), ``approvers`` (each approving reviewer's ``sub``, or
``["policy"]``), ``policy_version``, ``iat``, ``exp`` and ``jti``. It is signed here, in the
approving transaction, so changing the payload in the database afterwards does not change
what the receipt says. The agent gets it from ``GET /v1/proposals/{id}/decision``, an
executor webhook in its body; either checks it against ``/.well-known/jwks.json`` before
acting (``signoff/receipts.py``), and the execution report names its ``jti``: a receipt is
good for one execution (:func:`use`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, exists, insert, select
from sqlmodel import Session

from backend.core.canonical import sha256_hex
from backend.core.errors import ApiError
from backend.core.keys import get_keys
from backend.core.settings import get_settings
from models.common import new_id, utcnow
from models.proposals import Execution, Proposal
from models.receipts import Receipt

POLICY = "policy"


@dataclass(frozen=True)
class Issued:
    row: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.row["jti"])

    def audit_data(self) -> dict[str, Any]:
        """What the ``proposal.decided`` event records of the receipt (never the token)."""
        return {"jti": self.jti, "payload_sha256": self.row["payload_sha256"], "kid": get_keys().kid}


def issue(
    proposal_id: str,
    action_type: str,
    payload: dict[str, Any],
    approvers: list[str],
    policy_version: int | None,
    now: datetime | None = None,
) -> Issued:
    """Sign a receipt for an approval; the caller adds ``Issued.row`` once its approval won
    (``add`` for a session, or a bulk insert)."""
    keys = get_keys()
    issued_at = now or utcnow()
    expires_at = issued_at + timedelta(seconds=get_settings().receipt_seconds)
    digest = sha256_hex(payload)
    jti = new_id()
    claims = {
        "sub": proposal_id,
        "act": action_type,
        "payload_sha256": digest,
        "approvers": approvers or [POLICY],
        "policy_version": policy_version,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
    }
    token = keys.sign_compact(orjson.dumps(claims))
    return Issued(
        {
            "jti": jti,
            "proposal_id": proposal_id,
            "token": token,
            "payload_sha256": digest,
            "issued_at": issued_at,
            "expires_at": expires_at,
        }
    )


_INSERT = insert(Receipt.__table__)  # type: ignore[attr-defined]


def add(session: Session, issued: Issued) -> None:
    """Store the receipt now, as a Core INSERT (cheaper than an ORM object and its flush)."""
    session.connection().execute(_INSERT, issued.row)


_LATEST = (
    select(Receipt)
    .where(Receipt.proposal_id == bindparam("proposal_id"))  # type: ignore[arg-type]
    .order_by(Receipt.issued_at.desc())  # type: ignore[attr-defined]
    .limit(1)
)


def for_proposal(session: Session, proposal_id: str) -> Receipt | None:
    return session.scalars(_LATEST, {"proposal_id": proposal_id}).first()


def use(session: Session, proposal: Proposal, jti: str | None) -> str | None:
    """The receipt an execution report uses up: the one named (checked), else the
    proposal's own. A receipt already used, for another proposal, or expired is refused."""
    if jti is None:
        own = for_proposal(session, proposal.id)
        return own.jti if own else None
    receipt = session.get(Receipt, jti)
    if receipt is None:
        raise ApiError(422, "unknown_receipt", "No receipt has this jti.", param="receipt_jti")
    if session.scalar(select(exists().where(Execution.receipt_jti == jti))):  # type: ignore[arg-type]
        raise ApiError(
            409, "receipt_used", "This receipt was already used for an execution.", param="receipt_jti"
        )
    if receipt.proposal_id != proposal.id:
        raise ApiError(409, "receipt_mismatch", "This receipt is for another proposal.", param="receipt_jti")
    if receipt.expires_at <= utcnow():
        raise ApiError(409, "receipt_expired", "This receipt has expired.", param="receipt_jti")
    return jti
