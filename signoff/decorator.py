"""`@require_approval`: a tool function that runs only after a human (or policy) approves it.

The call's arguments are the proposal's payload. After approval the function runs once,
with the approved payload (the reviewer's edit if there was one), and its outcome is
reported. Inside ``with signoff.task("ticket-42"):`` the Idempotency-Key derives from the
task, so a task re-run after a crash finds its proposal instead of making another, and a
proposal already executed is not executed again: its recorded result is returned.
"""

import asyncio
import contextlib
import contextvars
import functools
import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from signoff.client import AsyncClient, Client
from signoff.errors import Drafted, ExecutionFailed, NotApproved, Rejected
from signoff.types import DecisionState, ProposalPublic

F = TypeVar("F", bound=Callable[..., Any])
Summary = str | Callable[[dict[str, Any]], str] | None
EvidenceArg = list[Any] | Callable[[dict[str, Any]], list[Any]] | None
ContextArg = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None

_task: contextvars.ContextVar[str | None] = contextvars.ContextVar("signoff_task", default=None)
_default_sync: Client | None = None
# httpx's AsyncClient belongs to the event loop it first ran on: keep one per loop.
_default_async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def task(task_id: str) -> Iterator[None]:
    """Tag the proposals made inside with the caller's task id (idempotency across re-runs)."""
    token = _task.set(task_id)
    try:
        yield
    finally:
        _task.reset(token)


def _sync_client() -> Client:
    global _default_sync
    if _default_sync is None:
        _default_sync = Client()
    return _default_sync


def _async_client() -> AsyncClient:
    loop = asyncio.get_running_loop()
    client = _default_async.get(loop)
    if client is None:
        client = _default_async[loop] = AsyncClient()
    return client


def _resolve(value: Any, payload: dict[str, Any]) -> Any:
    return value(payload) if callable(value) else value


def _summary(summary: Summary, payload: dict[str, Any], name: str) -> str:
    if summary is None:
        return name
    if callable(summary):
        return summary(payload)
    return summary.format(**payload)


def _payload(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (a ``**kwargs`` catch-all is flattened into them)."""
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    payload: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            payload.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError("require_approval needs named arguments; *args cannot become a payload")
        else:
            payload[name] = value
    return payload


def _outcome(state: DecisionState) -> None:
    """Raise unless the agent may now run the action."""
    if state.status == "approved":
        if state.mode == "draft":
            raise Drafted(state.proposal_id, state)
        return
    if state.status == "rejected":
        d = state.decision
        raise Rejected(
            state.proposal_id,
            d.reason_codes if d else [],
            d.comment if d else "",
            d.decided_by if d else "policy",
            state,
        )
    if state.status in ("executed", "failed"):
        return  # handled by the caller: an earlier run already executed it
    raise NotApproved(state.proposal_id, state.status, state=state)


def _previous(proposal: ProposalPublic) -> Any:
    """The result a previous run of this task already reported."""
    execution = proposal.execution
    if proposal.status == "failed" or (execution and execution.status == "failed"):
        raise ExecutionFailed(
            proposal.id, "failed", f"Proposal {proposal.id} already failed: {execution and execution.error}"
        )
    return execution.result if execution else None


def require_approval(
    action_type: str,
    *,
    summary: Summary = None,
    evidence: EvidenceArg = None,
    context: ContextArg = None,
    client: Client | AsyncClient | None = None,
    timeout: float | None = None,
    expires_in_seconds: int | None = None,
) -> Callable[[F], F]:
    """Gate a tool function (sync or async) behind a Signoff decision.

    ``summary`` is a format string over the payload or a function of it; ``evidence`` and
    ``context`` are values or functions of the payload. Raises :class:`Rejected` on a
    rejection, :class:`Drafted` in draft mode (the function never runs), and
    :class:`NotApproved` when the proposal expired or was cancelled.
    """

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        name = getattr(fn, "__name__", action_type)

        def propose_args(payload: dict[str, Any]) -> dict[str, Any]:
            return {
                "summary": _summary(summary, payload, name),
                "evidence": _resolve(evidence, payload),
                "context": _resolve(context, payload),
                "expires_in_seconds": expires_in_seconds,
                "task_id": _task.get(),
            }

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                c = client if isinstance(client, AsyncClient) else _async_client()
                payload = _payload(sig, args, kwargs)
                handle = await c.propose(action_type, payload, **propose_args(payload))
                if handle.mode == "draft" and handle.status == "pending":
                    raise Drafted(handle.id)
                state = await handle.wait(timeout)
                _outcome(state)
                if state.status in ("executed", "failed"):
                    return _previous(await handle.refresh())
                jti = (await c.check_receipt(state))["jti"]  # before the tool runs, or never
                try:
                    result = await fn(**state.payload)
                except Exception as exc:
                    await handle.report("failed", error=f"{type(exc).__name__}: {exc}", receipt_jti=jti)
                    raise
                await handle.report("succeeded", result, receipt_jti=jti)
                return result

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c = client if isinstance(client, Client) else _sync_client()
            payload = _payload(sig, args, kwargs)
            handle = c.propose(action_type, payload, **propose_args(payload))
            if handle.mode == "draft" and handle.status == "pending":
                raise Drafted(handle.id)
            state = handle.wait(timeout)
            _outcome(state)
            if state.status in ("executed", "failed"):
                return _previous(handle.refresh())
            jti = c.check_receipt(state)["jti"]  # before the tool runs, or never
            try:
                result = fn(**state.payload)
            except Exception as exc:
                handle.report("failed", error=f"{type(exc).__name__}: {exc}", receipt_jti=jti)
                raise
            handle.report("succeeded", result, receipt_jti=jti)
            return result

        return cast(F, wrapper)

    return decorate
