"""Work that rides on a write transaction's commit, as an explicit, ordered list of steps.

A service that changes state leaves notes on its session (an audit event to write, a
proposal that changed); the steps act on those notes when the session commits or rolls
back. Nothing registers itself by being imported: the list of steps is built in
``backend/on_commit.py`` and installed by the app factory and the CLI, and each phase runs
the steps in that list's order.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

Hook = Callable[[OrmSession], None]


@dataclass(frozen=True)
class Step:
    """One piece of commit-time work. ``before_commit`` runs inside the transaction (what it
    writes commits with it or not at all); ``after_commit`` runs once the data is durable;
    ``after_rollback`` forgets the session's notes."""

    name: str
    before_commit: Hook | None = None
    after_commit: Hook | None = None
    after_rollback: Hook | None = None


# The installed steps, in order; empty until install().
active: tuple[Step, ...] = ()


def install(steps: Sequence[Step]) -> None:
    """Run ``steps``, in this order, at every session's commit from now on (idempotent)."""
    global active
    active = tuple(steps)
    for phase, listener in (
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(OrmSession, phase, listener):
            event.listen(OrmSession, phase, listener)


def installed() -> tuple[str, ...]:
    """The names of the installed steps, in order (empty before :func:`install`)."""
    return tuple(step.name for step in active)


# SQLAlchemy fires these events for a savepoint's release and rollback too; the steps are
# for the real transaction only. A group commit (``backend/proposals/group_commit.py``)
# restores the notes of a job it rolls back to its savepoint itself.


def _before_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return
    for step in active:
        if step.before_commit is not None:
            step.before_commit(session)


def _after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return
    for step in active:
        if step.after_commit is not None:
            step.after_commit(session)


def _after_rollback(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return
    for step in active:
        if step.after_rollback is not None:
            step.after_rollback(session)
