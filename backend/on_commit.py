"""What runs when a write transaction commits, in order. The one place to read it.

1. ``audit``: the transaction's pending audit events are chained and written, inside the
   transaction, so a state change and its audit event land together or not at all
   (``backend/audit/chain.py``).
2. ``webhooks``: deliveries for the webhook events among those just written are queued in
   the same transaction, an outbox (``backend/webhooks/events.py``); after the commit this
   process's delivery worker is woken.
3. ``waiting``: proposals that left ``pending`` are announced with ``pg_notify`` (delivered
   by PostgreSQL at commit, to every replica) and, after the commit, this process's
   long-polling agents are woken (``backend/proposals/waiting.py``).
4. ``metrics``: the audit events just written become the Table 2 counters and histograms,
   counted only once the transaction has committed (``backend/observability/metrics.py``).
5. ``rollups``: the same events fold their proposals into the per-day counters and the
   decision times behind ``/v1/metrics``, inside the transaction (``backend/evals/rollup.py``).

:func:`install` is called by the app factory (``backend/app.py``) and the CLI's entry
(``backend/cli/main.py``); tests and benchmarks call it too. Until it is called, recording
an audit event raises, so no process can commit state changes without their audit trail.
"""

from backend.audit import chain
from backend.core import commit
from backend.evals import rollup
from backend.observability import metrics
from backend.proposals import waiting
from backend.webhooks import events

STEPS = (
    chain.COMMIT_STEP,
    events.COMMIT_STEP,
    waiting.COMMIT_STEP,
    metrics.COMMIT_STEP,
    rollup.COMMIT_STEP,
)


def install() -> None:
    commit.install(STEPS)
