"""Optional framework integrations: openai_agents, langgraph, mcp (each needs its extra)."""

from signoff.errors import ReceiptInvalid


def refusal(exc: ReceiptInvalid) -> str:
    """What an integration answers in place of the tool's result when the approval's receipt
    does not prove these exact arguments (signoff/receipts.py): the tool did not run."""
    return f"Not run: {exc}."
