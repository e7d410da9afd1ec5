"""The global kill switch."""

from sqlmodel import Session

from backend.audit import chain as audit
from models.common import utcnow
from models.system import KillSwitchState, SystemFlag

KILL_SWITCH = "kill_switch"


def kill_switch_engaged(session: Session) -> bool:
    flag = session.get(SystemFlag, KILL_SWITCH)
    return bool(flag and flag.value)


def kill_switch_state(session: Session) -> KillSwitchState:
    flag = session.get(SystemFlag, KILL_SWITCH)
    if flag is None:
        return KillSwitchState(engaged=False, updated_at=None, updated_by=None)
    return KillSwitchState(engaged=bool(flag.value), updated_at=flag.updated_at, updated_by=flag.updated_by)


def set_kill_switch(session: Session, engaged: bool, actor: str, reason: str = "") -> KillSwitchState:
    flag = session.get(SystemFlag, KILL_SWITCH) or SystemFlag(name=KILL_SWITCH)
    flag.value = engaged
    flag.updated_at = utcnow()
    flag.updated_by = actor
    session.add(flag)
    action = "kill_switch.engaged" if engaged else "kill_switch.released"
    audit.record(session, actor, action, "system", {"reason": reason})
    return KillSwitchState(engaged=engaged, updated_at=flag.updated_at, updated_by=actor)
