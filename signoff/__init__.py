"""Signoff's agent SDK: put any tool call under human approval.

    import signoff

    @signoff.require_approval("refund", summary="Refund ${amount_usd} on {order_id}")
    def refund(customer_id: str, order_id: str, amount_usd: float, currency: str, reason: str) -> dict:
        ...

Needs only httpx and pydantic at runtime; configure with SIGNOFF_URL and SIGNOFF_API_KEY.
"""

from signoff.client import AsyncClient, AsyncProposalHandle, Client, ProposalHandle
from signoff.decorator import require_approval, task
from signoff.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    Drafted,
    ExecutionFailed,
    InvalidRequestError,
    NotApproved,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReceiptInvalid,
    Rejected,
    ServerError,
    SignoffError,
    WaitTimeout,
)
from signoff.receipts import verify_receipt
from signoff.types import DecisionPublic, DecisionState, EvidenceItem, ExecutionPublic, ProposalPublic

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AsyncProposalHandle",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "DecisionPublic",
    "DecisionState",
    "Drafted",
    "EvidenceItem",
    "ExecutionFailed",
    "ExecutionPublic",
    "InvalidRequestError",
    "NotApproved",
    "NotFoundError",
    "PermissionDeniedError",
    "ProposalHandle",
    "ProposalPublic",
    "RateLimitError",
    "ReceiptInvalid",
    "Rejected",
    "ServerError",
    "SignoffError",
    "WaitTimeout",
    "require_approval",
    "verify_receipt",
    "task",
]
