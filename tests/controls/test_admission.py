"""One rule for stopped agents: who asks decides the status, the kill switch is named first."""

import pytest

from backend.controls.admission import Asker, refusal
from models.agents import Agent


@pytest.mark.parametrize(
    ("suspended", "kill_switch", "asker", "expected"),
    [
        (False, False, Asker.agent, None),
        (False, False, Asker.reviewer, None),
        (True, False, Asker.agent, (403, "agent_suspended")),
        (True, False, Asker.reviewer, (409, "agent_suspended")),
        (False, True, Asker.agent, (403, "kill_switch_engaged")),
        (False, True, Asker.reviewer, (409, "kill_switch_engaged")),
        (True, True, Asker.agent, (403, "kill_switch_engaged")),
        (True, True, Asker.reviewer, (409, "kill_switch_engaged")),
    ],
)
def test_refusal(suspended: bool, kill_switch: bool, asker: Asker, expected: tuple[int, str] | None) -> None:
    error = refusal(Agent(name="a", suspended=suspended), kill_switch, asker)
    assert (None if error is None else (error.status, error.code)) == expected
