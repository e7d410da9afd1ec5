"""Scripted agents for eval runs: one repeats the mistakes reviewers rejected, one fixes them.

The test fills SCRIPT with what each case's original proposal was and, for cases a
reviewer corrected, the corrected payload.
"""

from typing import Any

ORIGINAL: dict[str, dict[str, Any]] = {}
CORRECTED: dict[str, dict[str, Any]] = {}
VERSIONS = {"model": "gpt-test", "prompt_version": "refunds-v3"}


def _body(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_type": "refund",
        "payload": payload,
        "summary": f"Refund {payload['amount_usd']} for {payload['order_id']}",
        "context": dict(VERSIONS),
    }


def repeater(case: dict[str, Any]) -> dict[str, Any] | None:
    """Proposes exactly what was proposed before, mistakes included."""
    return _body(ORIGINAL[case["case_id"]])


def fixer(case: dict[str, Any]) -> dict[str, Any] | None:
    """Proposes the corrected action where there was one, and nothing where a reviewer said no."""
    corrected = CORRECTED.get(case["case_id"])
    return _body(corrected) if corrected else None


class Interrupted(BaseException):
    """Stands for Ctrl-C in the middle of a run."""


def interrupter(case: dict[str, Any]) -> dict[str, Any] | None:
    raise Interrupted()
