"""How much autonomy a proposal gets: the one function that combines every cap.

The effective mode of a proposal is the lowest of:

- the agent's **dial** for the action type (``observe`` < ``draft`` < ``approve`` < ``execute``);
- the **breaker**: a tripped breaker caps the agent at ``draft``
  (``backend/controls/breaker.py``, tripped from ``backend/controls/budgets/ledger.py``);
- the **policy** outcome (``backend/controls/policy/gate.py``): ``deny`` rejects outright,
  ``propose`` caps at ``approve``, ``execute`` lets the dial decide;
- an **eval run**: a proposal placed by a scenario suite's run is only observed
  (``backend/evals/runs.py`` recognises it), but a policy deny stays a deny.

``None`` means denied. Placement (``backend/proposals/batch.py``) asks this once per proposal.
"""

from backend.controls.policy.gate import Outcome
from models.agents import Dial


def effective_mode(dial: Dial, *, breaker_tripped: bool, outcome: Outcome, eval_run: bool) -> Dial | None:
    """The lowest of the dial, the breaker cap, the policy outcome and the eval-run cap."""
    if outcome == "deny":
        return None
    caps = [dial, Dial.execute if outcome == "execute" else Dial.approve]
    if breaker_tripped:
        caps.append(Dial.draft)
    if eval_run:
        caps.append(Dial.observe)
    return min(caps, key=lambda d: d.rank)
