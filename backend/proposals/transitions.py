"""Every move of a proposal from one status to the next, as one conditional UPDATE.

The UPDATE names the status the proposal must still be in, so exactly one of any number
of concurrent requests (threads or API replicas) wins; the others see False and answer
409. Leaving ``pending`` (a decision, expiry on read, the expiry sweep, a cancellation)
goes through :func:`leave_pending`, which also clears the claim, writes the audit event
and wakes the agent's long-poll; reaching ``executed`` or ``failed`` goes through
:func:`finish`.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from backend.audit import chain as audit
from backend.core.errors import ApiError
from backend.proposals import waiting
from models.action_types import ActionType, OnExpiry
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Decision, Proposal, Status, Verdict

FINAL_FROM_PENDING = frozenset({Status.approved, Status.rejected, Status.expired, Status.cancelled})


_TABLE = Proposal.__table__  # type: ignore[attr-defined]
# The UPDATEs, built once per shape (which columns it sets, whether it checks updated_at):
# building the expression anew each time cost more than running it.
_UPDATES: dict[tuple[tuple[str, ...], bool], Any] = {}


def _update(columns: tuple[str, ...], checked: bool) -> Any:
    statement = _UPDATES.get((columns, checked))
    if statement is None:
        conditions = [_TABLE.c.id == bindparam("_id"), _TABLE.c.status == bindparam("_from")]
        if checked:
            conditions.append(_TABLE.c.updated_at == bindparam("_since"))
        statement = update(_TABLE).where(*conditions).values({c: bindparam(c) for c in columns})
        _UPDATES[columns, checked] = statement
    return statement


def set_if(
    session: Session, proposal_id: str, current: Status, since: datetime | None, **values: Any
) -> bool:
    """Set ``values`` on a proposal still in status ``current`` (and, given ``since``, not updated
    since); False if it was not. A Core UPDATE: proposals already loaded in ``session`` are
    not refreshed, so whoever writes one afterwards loads it afresh (``load(for_update=True)``)."""
    params = {**values, "_id": proposal_id, "_from": current.value}
    if since is not None:
        params["_since"] = since
    result = session.connection().execute(_update(tuple(sorted(values)), since is not None), params)
    return bool(result.rowcount)


def transition(
    session: Session,
    proposal_id: str,
    from_status: Status,
    to_status: Status,
    *,
    unchanged_since: datetime | None = None,
    **values: Any,
) -> bool:
    """Move one proposal from one status to another; False if someone else moved it first
    (or, given ``unchanged_since``, changed it at all since it was read: another approval)."""
    return set_if(
        session,
        proposal_id,
        from_status,
        unchanged_since,
        **values,
        status=to_status.value,
        updated_at=utcnow(),
    )


def leave_pending(
    session: Session,
    proposal_id: str,
    to_status: Status,
    *,
    actor: str,
    action: AuditAction,
    data: dict[str, Any],
    at: datetime | None = None,
    unchanged_since: datetime | None = None,
    **values: Any,
) -> bool:
    """End a pending proposal: decided now, unclaimed, audited, its waiters woken once the
    transaction commits. False (and nothing written) if it had already left ``pending``."""
    if to_status not in FINAL_FROM_PENDING:
        raise ValueError(f"a pending proposal cannot become {to_status}")
    moved = transition(
        session,
        proposal_id,
        Status.pending,
        to_status,
        unchanged_since=unchanged_since,
        **values,
        decided_at=at or utcnow(),
        claimed_by=None,
        claimed_by_name=None,
        claim_expires_at=None,
    )
    if moved:
        audit.record(session, actor, action, f"proposal:{proposal_id}", data)
        waiting.proposal_changed(session, proposal_id)
    return moved


def expire(session: Session, proposal_id: str, expires_at: datetime, at: datetime | None = None) -> bool:
    """A pending proposal past its deadline ends as its action type's ``on_expiry`` says:
    ``rejected`` (the default: silence is a refusal, with a system decision giving the
    reason code ``expired``) or ``expired``. On read and in the sweep alike."""
    on_expiry = session.execute(
        select(ActionType.on_expiry)
        .join(Proposal, Proposal.action_type == ActionType.name)  # type: ignore[arg-type]
        .where(Proposal.id == proposal_id)  # type: ignore[arg-type]
    ).scalar()
    outcome = Status.rejected if on_expiry == OnExpiry.reject.value else Status.expired
    now = at or utcnow()
    moved = leave_pending(
        session,
        proposal_id,
        outcome,
        actor="system",
        action=AuditAction.PROPOSAL_EXPIRED,
        data={"expires_at": expires_at, "outcome": outcome.value},
        at=now,
    )
    if moved and outcome == Status.rejected:
        session.add(
            Decision(
                proposal_id=proposal_id,
                verdict=Verdict.reject.value,
                decided_by="system",
                reason_codes=["expired"],
                comment="No decision before the deadline.",
                created_at=now,
            )
        )
    return moved


def finish(session: Session, proposal_id: str, succeeded: bool, *, actor: str, data: dict[str, Any]) -> bool:
    """An approved proposal was executed (or failed): audited, its waiters woken.
    False if it was not ``approved`` any more."""
    final = Status.executed if succeeded else Status.failed
    moved = transition(session, proposal_id, Status.approved, final)
    if moved:
        audit.record(session, actor, AuditAction.PROPOSAL_EXECUTED, f"proposal:{proposal_id}", data)
        waiting.proposal_changed(session, proposal_id)
    return moved


def already_decided(proposal: Proposal) -> ApiError:
    """The answer for whoever lost the race: the proposal left ``pending`` already."""
    return ApiError(
        409,
        "already_decided",
        f"This proposal is already {proposal.status}.",
        extra={"status": proposal.status},
    )
