"""A command-line agent for `signoff eval run`: refunds whatever the customer asks for.

Reads one case as JSON on stdin, posts its proposal with the key in SIGNOFF_API_KEY.
"""

import json
import os
import sys

import httpx


def main() -> int:
    case = json.load(sys.stdin)
    ask = case["input"]
    body = {
        "action_type": case["action_type"],
        "payload": {
            "customer_id": ask["customer_id"],
            "order_id": ask["order_id"],
            "amount_usd": ask["asked_usd"],
            "currency": "USD",
            "reason": ask["message"],
        },
        "context": {"model": "naive-1", "prompt_version": "p1", "run_id": case["run_id"]},
    }
    r = httpx.post(
        f"{os.environ['SIGNOFF_API_URL']}/v1/proposals",
        json=body,
        headers={"Authorization": f"Bearer {os.environ['SIGNOFF_API_KEY']}"},
        timeout=30,
    )
    return 0 if r.status_code == 201 else 1


if __name__ == "__main__":
    sys.exit(main())
