"""A support agent that refunds damaged orders, under human approval.

Run a Signoff server, create an agent and key, then:

    signoff agents create refund-bot --grant refund --json
    signoff keys create refund-bot --json            # -> so_...
    SIGNOFF_URL=http://localhost:8000 SIGNOFF_API_KEY=so_... python examples/refund_agent.py

Each ticket becomes a refund proposal with its evidence; the process waits until a reviewer
decides in the console, then refunds the approved (possibly edited) amount, once, and
reports the outcome. Re-running after a crash does not refund twice: proposals are keyed
by ticket id.
"""

import argparse
import hashlib
import json
import uuid

import signoff

TICKETS = [
    {
        "ticket": "T-1001",
        "customer_id": "cus_ada",
        "order_id": "ord_5521",
        "order_total": 149.0,
        "message": "My blender arrived cracked. Photos attached. I'd like a refund please.",
    },
    {
        "ticket": "T-1002",
        "customer_id": "cus_bob",
        "order_id": "ord_7730",
        "order_total": 42.0,
        "message": "Wrong colour delivered, I want my money back.",
    },
]


def evidence(payload: dict) -> list[dict]:
    ticket = CURRENT[payload["order_id"]]
    return [
        {"kind": "message", "title": f"Ticket {ticket['ticket']}", "content": ticket["message"]},
        {
            "kind": "record",
            "title": "Order",
            "content": {"order_id": ticket["order_id"], "total": ticket["order_total"]},
        },
        {
            "kind": "note",
            "title": "Agent reasoning",
            "content": "Damage reported by the customer; refund the full order total.",
            "sha256": hashlib.sha256(ticket["message"].encode()).hexdigest(),
        },
    ]


CURRENT: dict[str, dict] = {}


@signoff.require_approval(
    "refund",
    summary="Refund ${amount_usd} to {customer_id} for {order_id}",
    evidence=evidence,
    context={"model": "scripted", "prompt_version": "refunds-v1", "tool_schema_version": "1"},
)
def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> dict:
    """The real side effect (here: a pretend payment provider call)."""
    return {"refund_id": f"re_{uuid.uuid4().hex[:10]}", "amount_usd": amount_usd, "currency": currency}


def handle(ticket: dict) -> str:
    CURRENT[ticket["order_id"]] = ticket
    with signoff.task(ticket["ticket"]):
        try:
            done = refund(
                customer_id=ticket["customer_id"],
                order_id=ticket["order_id"],
                amount_usd=ticket["order_total"],
                currency="USD",
                reason=ticket["message"][:200],
            )
        except signoff.Rejected as exc:
            return f"{ticket['ticket']}: not refunded ({', '.join(exc.reason_codes)}: {exc.comment})"
        except signoff.Drafted as exc:
            return f"{ticket['ticket']}: drafted as {exc.proposal_id}; a person will apply it"
        except signoff.NotApproved as exc:
            return f"{ticket['ticket']}: {exc}"
    return f"{ticket['ticket']}: refunded {json.dumps(done)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=len(TICKETS), help="how many tickets to work")
    args = parser.parse_args()
    for ticket in TICKETS[: args.tickets]:
        print(handle(ticket), flush=True)


if __name__ == "__main__":
    main()
