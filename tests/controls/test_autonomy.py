"""The effective mode is the lowest of the dial, the breaker, the policy and the eval-run cap."""

import pytest

from backend.controls.autonomy import effective_mode
from models.agents import Dial


@pytest.mark.parametrize(
    ("dial", "breaker", "outcome", "eval_run", "expected"),
    [
        (Dial.execute, False, "execute", False, Dial.execute),
        (Dial.execute, False, "propose", False, Dial.approve),
        (Dial.approve, False, "execute", False, Dial.approve),
        (Dial.execute, True, "execute", False, Dial.draft),
        (Dial.observe, True, "execute", False, Dial.observe),
        (Dial.execute, False, "execute", True, Dial.observe),
        (Dial.execute, False, "deny", False, None),
        (Dial.execute, True, "deny", True, None),  # an eval run never turns a deny into observe
    ],
)
def test_effective_mode(
    dial: Dial, breaker: bool, outcome: str, eval_run: bool, expected: Dial | None
) -> None:
    mode = effective_mode(dial, breaker_tripped=breaker, outcome=outcome, eval_run=eval_run)  # type: ignore[arg-type]
    assert mode == expected
