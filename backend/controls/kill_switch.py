"""The global kill switch: one flag that stops every agent (see ``backend/controls/admission.py``)."""

from sqlmodel import Session

from backend.audit import chain as audit
from models.audit import AuditAction
from models.common import utcnow
from models.system import KillSwitchState, SystemFlag

FLAG = "kill_switch"


# Most databases never have the flag's row; its absence is remembered for the rest of the
# transaction (a group commit asks once per decision), until set_engaged writes it.
_ABSENT = "signoff_kill_switch_absent"


def engaged(session: Session) -> bool:
    if session.info.get(_ABSENT):
        return False
    flag = session.get(SystemFlag, FLAG)
    if flag is None:
        session.info[_ABSENT] = True
    return bool(flag and flag.value)


def state(session: Session) -> KillSwitchState:
    flag = session.get(SystemFlag, FLAG)
    if flag is None:
        return KillSwitchState(engaged=False, updated_at=None, updated_by=None)
    return KillSwitchState(engaged=bool(flag.value), updated_at=flag.updated_at, updated_by=flag.updated_by)


def set_engaged(session: Session, engaged: bool, actor: str, reason: str = "") -> KillSwitchState:
    session.info.pop(_ABSENT, None)
    flag = session.get(SystemFlag, FLAG) or SystemFlag(name=FLAG)
    flag.value = engaged
    flag.updated_at = utcnow()
    flag.updated_by = actor
    session.add(flag)
    action = AuditAction.KILL_SWITCH_ENGAGED if engaged else AuditAction.KILL_SWITCH_RELEASED
    audit.record(session, actor, action, "system", {"reason": reason})
    return KillSwitchState(engaged=engaged, updated_at=flag.updated_at, updated_by=actor)
