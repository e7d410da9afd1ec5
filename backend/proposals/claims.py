"""Claims: a time-limited hold so two reviewers don't work the same proposal at once."""

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.core.db import transaction
from backend.core.errors import ApiError
from backend.core.settings import get_settings
from backend.proposals.lookup import load
from backend.proposals.reading import still_pending
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Proposal, Status


def claim(proposal_id: str, user: User) -> dict[str, Any]:
    with transaction() as session:
        proposal = still_pending(session, proposal_id, expired="This proposal has expired.")
        now = utcnow()
        until = now + timedelta(seconds=get_settings().claim_seconds)
        result = session.execute(
            update(Proposal)
            .where(
                Proposal.id == proposal.id,
                Proposal.status == Status.pending.value,  # type: ignore[arg-type]
                or_(
                    Proposal.claimed_by.is_(None),
                    Proposal.claimed_by == user.sub,  # type: ignore[union-attr]
                    Proposal.claim_expires_at <= now,
                ),  # type: ignore[operator]
            )
            .values(
                claimed_by=user.sub,
                claimed_by_name=user.name or user.email or user.sub,
                claim_expires_at=until,
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            current = load(session, proposal_id)
            raise ApiError(
                409,
                "claimed",
                f"{current.claimed_by_name or current.claimed_by} is reviewing this.",
                extra={"claimed_by": current.claimed_by, "claim_expires_at": current.claim_expires_at},
            )
        audit.record(
            session, user.actor, AuditAction.PROPOSAL_CLAIMED, f"proposal:{proposal.id}", {"until": until}
        )
        return {"by": user.sub, "name": user.name or user.email or user.sub, "expires_at": until}


def release(proposal_id: str, user: User, is_admin: bool, force: bool = False) -> None:
    """Release one's own claim; an admin breaks another reviewer's with ``force`` (audited,
    naming whose claim it was)."""
    with transaction() as session:
        proposal = load(session, proposal_id)
        if proposal.claimed_by is None:
            return
        held_by = proposal.claimed_by
        if held_by != user.sub:
            if not is_admin:
                raise ApiError(
                    403, "not_claim_holder", "Only the reviewer who holds the claim can release it."
                )
            if not force:
                raise ApiError(
                    409,
                    "claimed",
                    f"{proposal.claimed_by_name or held_by} holds this claim; break it with force=true.",
                    param="force",
                )
        proposal.claimed_by = proposal.claimed_by_name = proposal.claim_expires_at = None
        session.add(proposal)
        data = {"forced": True, "held_by": held_by} if held_by != user.sub else {}
        audit.record(session, user.actor, AuditAction.PROPOSAL_RELEASED, f"proposal:{proposal.id}", data)


def assign(proposal_id: str, user: User, to: str) -> dict[str, Any]:
    """Assign a pending proposal to a reviewer (their ``sub``) or a group (``group:NAME``)."""
    with transaction() as session:
        proposal = still_pending(session, proposal_id, expired="This proposal has expired.")
        before = proposal.assigned_to
        proposal.assigned_to = to
        session.add(proposal)
        audit.record(
            session,
            user.actor,
            AuditAction.PROPOSAL_ASSIGNED,
            f"proposal:{proposal.id}",
            {"to": to, "from": before},
        )
        return {"proposal_id": proposal.id, "assigned_to": to}
