"""Typed exceptions: API errors carry the server's error object; outcomes that stop a tool.

An agent catches :class:`Rejected` to explain itself or retry, and :class:`APIError`
subclasses to tell "you may not" (403) from "try again later" (5xx, after retries).
"""

from typing import Any


class SignoffError(Exception):
    """Base of everything the SDK raises."""


class APIError(SignoffError):
    """The API answered with an error: ``error`` is the ``{"error": {...}}`` object's body."""

    def __init__(
        self, status_code: int, error: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.type: str = str(error.get("type", "api_error"))
        self.code: str = str(error.get("code", "unknown"))
        self.message: str = str(error.get("message", ""))
        self.param: str | None = error.get("param")
        self.headers = headers or {}
        super().__init__(f"{status_code} {self.code}: {self.message}")


class InvalidRequestError(APIError):
    """400, 413, 422: fix the request; retrying it unchanged will not help."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong, revoked or expired."""


class PermissionDeniedError(APIError):
    """403: suspended agent, kill switch, action type not granted."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409: already decided, idempotency key reused with another body, draft not executable..."""


class RateLimitError(APIError):
    """429."""


class ServerError(APIError):
    """5xx that persisted through every retry."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_for(status_code: int, body: Any, headers: dict[str, str] | None = None) -> APIError:
    """Build the typed exception for an error response (any body, even a proxy's HTML)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"type": "api_error", "code": f"http_{status_code}", "message": str(body)[:500]}
    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIError)
    return cls(status_code, error, headers)


class APIConnectionError(SignoffError):
    """The API could not be reached (or kept dropping the connection) through every retry."""


class WaitTimeout(SignoffError, TimeoutError):
    """``wait(timeout)`` ran out before a decision; ``state`` is the last state seen."""

    def __init__(self, proposal_id: str, state: Any = None) -> None:
        self.proposal_id = proposal_id
        self.state = state
        super().__init__(f"No decision on proposal {proposal_id} yet.")


class NotApproved(SignoffError):
    """The proposal ended without an approval the agent may act on (expired, cancelled, observed)."""

    def __init__(self, proposal_id: str, status: str, message: str | None = None, state: Any = None) -> None:
        self.proposal_id = proposal_id
        self.status = status
        self.state = state
        super().__init__(message or f"Proposal {proposal_id} is {status}; the action was not run.")


class Rejected(NotApproved):
    """A reviewer (or the policy) rejected the action: reasons and comment say why."""

    def __init__(
        self,
        proposal_id: str,
        reason_codes: list[str],
        comment: str = "",
        decided_by: str = "user",
        state: Any = None,
    ) -> None:
        self.reason_codes = reason_codes
        self.comment = comment
        self.decided_by = decided_by
        reasons = ", ".join(reason_codes) or "no reason given"
        detail = f" ({comment})" if comment else ""
        super().__init__(
            proposal_id, "rejected", f"Proposal {proposal_id} was rejected: {reasons}{detail}", state
        )


class Drafted(NotApproved):
    """The action is in `draft` mode: the agent never runs it; a human or the executor applies it."""

    def __init__(self, proposal_id: str, state: Any = None) -> None:
        super().__init__(
            proposal_id,
            "pending",
            f"Proposal {proposal_id} is a draft: a reviewer decides and the executor applies it.",
            state,
        )


class ExecutionFailed(NotApproved):
    """An earlier run of this very proposal already reported a failure (seen on a replayed task)."""


class ReceiptInvalid(SignoffError):
    """The approval receipt does not prove that this exact action was approved: a bad or
    unknown signature, expired, for another proposal or payload, or already used. The tool
    is not run."""

    def __init__(self, proposal_id: str | None, reason: str) -> None:
        self.proposal_id = proposal_id
        self.reason = reason
        super().__init__(f"Receipt refused for {proposal_id or 'proposal'}: {reason}")
