"""`Client` and `AsyncClient`: propose, wait for the decision, report what happened.

Every request is retried on network errors, 5xx and 429 with exponential backoff. That is
safe for creates because each carries an Idempotency-Key (the server replays the first
answer), for reports because the server treats the same report as a replay, and for reads.
"""

import asyncio
import math
import time
from typing import Any

import httpx

from signoff import _core
from signoff.errors import APIConnectionError, ReceiptInvalid, WaitTimeout
from signoff.receipts import UsedReceipts, verify_receipt
from signoff.types import (
    DecisionState,
    EvidenceItem,
    ExecutionPublic,
    ProposalContext,
    ProposalPublic,
)

Evidence = list[EvidenceItem | dict[str, Any]] | None
Context = ProposalContext | dict[str, Any] | None


class ProposalHandle:
    """One proposal, as the agent that placed it sees it."""

    def __init__(self, client: "Client", proposal: ProposalPublic, replayed: bool = False) -> None:
        self.client = client
        self.proposal = proposal
        self.replayed = replayed

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def status(self) -> str:
        return self.proposal.status

    @property
    def mode(self) -> str:
        return self.proposal.mode

    def wait(self, timeout: float | None = None) -> DecisionState:
        return self.client.wait(self.id, timeout)

    def report(
        self, status: str, result: Any = None, error: str | None = None, receipt_jti: str | None = None
    ) -> ExecutionPublic:
        return self.client.report(self.id, status, result, error, receipt_jti)

    def cancel(self) -> ProposalPublic:
        self.proposal = self.client.cancel(self.id)
        return self.proposal

    def refresh(self) -> ProposalPublic:
        self.proposal = self.client.get(self.id)
        return self.proposal


class AsyncProposalHandle:
    def __init__(self, client: "AsyncClient", proposal: ProposalPublic, replayed: bool = False) -> None:
        self.client = client
        self.proposal = proposal
        self.replayed = replayed

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def status(self) -> str:
        return self.proposal.status

    @property
    def mode(self) -> str:
        return self.proposal.mode

    async def wait(self, timeout: float | None = None) -> DecisionState:  # noqa: ASYNC109 (same API as sync)
        return await self.client.wait(self.id, timeout)

    async def report(
        self, status: str, result: Any = None, error: str | None = None, receipt_jti: str | None = None
    ) -> ExecutionPublic:
        return await self.client.report(self.id, status, result, error, receipt_jti)

    async def cancel(self) -> ProposalPublic:
        self.proposal = await self.client.cancel(self.id)
        return self.proposal

    async def refresh(self) -> ProposalPublic:
        self.proposal = await self.client.get(self.id)
        return self.proposal


def _remaining(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline - time.monotonic()


class Client:
    """Synchronous client. Configure with arguments or `SIGNOFF_URL` / `SIGNOFF_API_KEY`."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = _core.Settings.resolve(url, api_key, timeout, max_retries, backoff, max_backoff)
        self._http = httpx.Client(
            base_url=self.settings.url,
            headers=self.settings.headers(),
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [_core.add_trace_headers]},
        )
        self._jwks: dict[str, Any] | None = None
        self._used = UsedReceipts()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = _core.canonical(body) if body is not None else None
        hdrs = {**(headers or {}), **({"Content-Type": "application/json"} if content else {})}
        last: Exception | None = None
        last_response: httpx.Response | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                time.sleep(self.settings.delay(attempt - 1, last_response))
            last_response = None
            try:
                response = self._http.request(method, path, content=content, headers=hdrs)
            except httpx.TransportError as exc:
                last = exc
                continue
            if _core.retryable(response):
                last_response, last = response, None
                continue
            _core.raise_for(response)
            return response
        if last_response is not None:
            _core.raise_for(last_response)
        raise APIConnectionError(
            f"{method} {path} failed after {self.settings.max_retries + 1} attempts: {last}"
        )

    def propose(
        self,
        action_type: str,
        payload: dict[str, Any],
        *,
        summary: str = "",
        evidence: Evidence = None,
        context: Context = None,
        expires_in_seconds: int | None = None,
        idempotency_key: str | None = None,
        task_id: str | None = None,
    ) -> ProposalHandle:
        """Place a proposal; retried safely under one Idempotency-Key."""
        body = _core.create_body(action_type, payload, summary, evidence, context, expires_in_seconds)
        key = idempotency_key or _core.idempotency_key(task_id, action_type, payload)
        r = self._request("POST", "/v1/proposals", body=body, headers={"Idempotency-Key": key})
        replayed = r.headers.get("idempotent-replayed") == "true"
        return ProposalHandle(self, ProposalPublic.model_validate(r.json()), replayed)

    def handle(self, proposal_id: str) -> ProposalHandle:
        return ProposalHandle(self, self.get(proposal_id))

    def get(self, proposal_id: str) -> ProposalPublic:
        return ProposalPublic.model_validate(self._request("GET", f"/v1/proposals/{proposal_id}").json())

    def decision(self, proposal_id: str) -> DecisionState:
        r = self._request("GET", f"/v1/proposals/{proposal_id}/decision")
        return DecisionState.model_validate(r.json())

    def jwks(self, refresh: bool = False) -> dict[str, Any]:
        """The server's public keys (``/.well-known/jwks.json``), fetched once and kept."""
        if refresh or self._jwks is None:
            self._jwks = self._request("GET", "/.well-known/jwks.json").json()
        return self._jwks

    def check_receipt(self, state: DecisionState) -> dict[str, Any]:
        """Prove that `state.payload` is exactly what was approved, and use the receipt up
        (this client acts on a receipt once). Raises :class:`ReceiptInvalid`."""
        if not state.receipt:
            raise ReceiptInvalid(state.proposal_id, "the approval carries no receipt")
        try:
            claims = verify_receipt(
                state.receipt, self.jwks(), proposal_id=state.proposal_id, payload=state.payload
            )
        except ReceiptInvalid as first:
            if not first.reason.startswith("bad signature"):
                raise
            # Perhaps signed by a key rotated in since the key set was fetched.
            claims = verify_receipt(
                state.receipt, self.jwks(refresh=True), proposal_id=state.proposal_id, payload=state.payload
            )
        self._used.claim(claims)
        return claims

    def wait(self, proposal_id: str, timeout: float | None = None) -> DecisionState:
        """Long-poll until the proposal leaves `pending`, reconnecting through dropped connections.

        Network errors are retried until `timeout` runs out (or, with no timeout, until
        `max_retries` fail in a row). Raises :class:`WaitTimeout` when time runs out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        path = f"/v1/proposals/{proposal_id}/decision"
        failures, last_state, last_exc = 0, None, None
        while (remaining := _remaining(deadline)) > 0:
            poll = min(_core.POLL_SECONDS, remaining)
            try:
                r = self._http.get(
                    path,
                    params={"wait": f"{poll:.3f}"},
                    timeout=httpx.Timeout(self.settings.timeout, read=poll + self.settings.timeout),
                )
                if _core.retryable(r):
                    raise httpx.NetworkError(f"HTTP {r.status_code}")
            except httpx.TransportError as exc:
                failures, last_exc = failures + 1, exc
                if deadline is None and failures > self.settings.max_retries:
                    raise APIConnectionError(f"waiting for {proposal_id}: {exc}") from exc
                time.sleep(min(self.settings.delay(failures - 1), max(0.0, _remaining(deadline))))
                continue
            _core.raise_for(r)
            failures = 0
            last_state = DecisionState.model_validate(r.json())
            if last_state.decided:
                return last_state
        if last_state is None and last_exc is not None:
            raise APIConnectionError(f"waiting for {proposal_id}: {last_exc}") from last_exc
        raise WaitTimeout(proposal_id, last_state)

    def report(
        self,
        proposal_id: str,
        status: str,
        result: Any = None,
        error: str | None = None,
        receipt_jti: str | None = None,
    ) -> ExecutionPublic:
        """Report the outcome once; a retried identical report is a replay on the server."""
        body = _core.report_body(status, result, error, receipt_jti)
        r = self._request("POST", f"/v1/proposals/{proposal_id}/execution", body=body)
        return ExecutionPublic.model_validate(r.json())

    def cancel(self, proposal_id: str) -> ProposalPublic:
        r = self._request("POST", f"/v1/proposals/{proposal_id}/cancel")
        return ProposalPublic.model_validate(r.json())


class AsyncClient:
    """The asyncio twin of :class:`Client`."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = _core.Settings.resolve(url, api_key, timeout, max_retries, backoff, max_backoff)
        self._http = httpx.AsyncClient(
            base_url=self.settings.url,
            headers=self.settings.headers(),
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [_core.add_trace_headers_async]},
        )
        self._jwks: dict[str, Any] | None = None
        self._used = UsedReceipts()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = _core.canonical(body) if body is not None else None
        hdrs = {**(headers or {}), **({"Content-Type": "application/json"} if content else {})}
        last: Exception | None = None
        last_response: httpx.Response | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.settings.delay(attempt - 1, last_response))
            last_response = None
            try:
                response = await self._http.request(method, path, content=content, headers=hdrs)
            except httpx.TransportError as exc:
                last = exc
                continue
            if _core.retryable(response):
                last_response, last = response, None
                continue
            _core.raise_for(response)
            return response
        if last_response is not None:
            _core.raise_for(last_response)
        raise APIConnectionError(
            f"{method} {path} failed after {self.settings.max_retries + 1} attempts: {last}"
        )

    async def propose(
        self,
        action_type: str,
        payload: dict[str, Any],
        *,
        summary: str = "",
        evidence: Evidence = None,
        context: Context = None,
        expires_in_seconds: int | None = None,
        idempotency_key: str | None = None,
        task_id: str | None = None,
    ) -> AsyncProposalHandle:
        body = _core.create_body(action_type, payload, summary, evidence, context, expires_in_seconds)
        key = idempotency_key or _core.idempotency_key(task_id, action_type, payload)
        r = await self._request("POST", "/v1/proposals", body=body, headers={"Idempotency-Key": key})
        replayed = r.headers.get("idempotent-replayed") == "true"
        return AsyncProposalHandle(self, ProposalPublic.model_validate(r.json()), replayed)

    async def handle(self, proposal_id: str) -> AsyncProposalHandle:
        return AsyncProposalHandle(self, await self.get(proposal_id))

    async def get(self, proposal_id: str) -> ProposalPublic:
        r = await self._request("GET", f"/v1/proposals/{proposal_id}")
        return ProposalPublic.model_validate(r.json())

    async def jwks(self, refresh: bool = False) -> dict[str, Any]:
        if refresh or self._jwks is None:
            self._jwks = (await self._request("GET", "/.well-known/jwks.json")).json()
        return self._jwks

    async def check_receipt(self, state: DecisionState) -> dict[str, Any]:
        """See :meth:`Client.check_receipt`."""
        if not state.receipt:
            raise ReceiptInvalid(state.proposal_id, "the approval carries no receipt")
        try:
            claims = verify_receipt(
                state.receipt, await self.jwks(), proposal_id=state.proposal_id, payload=state.payload
            )
        except ReceiptInvalid as first:
            if not first.reason.startswith("bad signature"):
                raise
            keys = await self.jwks(refresh=True)
            claims = verify_receipt(state.receipt, keys, proposal_id=state.proposal_id, payload=state.payload)
        self._used.claim(claims)
        return claims

    async def decision(self, proposal_id: str) -> DecisionState:
        r = await self._request("GET", f"/v1/proposals/{proposal_id}/decision")
        return DecisionState.model_validate(r.json())

    async def wait(self, proposal_id: str, timeout: float | None = None) -> DecisionState:  # noqa: ASYNC109
        deadline = None if timeout is None else time.monotonic() + timeout
        path = f"/v1/proposals/{proposal_id}/decision"
        failures, last_state, last_exc = 0, None, None
        while (remaining := _remaining(deadline)) > 0:
            poll = min(_core.POLL_SECONDS, remaining)
            try:
                r = await self._http.get(
                    path,
                    params={"wait": f"{poll:.3f}"},
                    timeout=httpx.Timeout(self.settings.timeout, read=poll + self.settings.timeout),
                )
                if _core.retryable(r):
                    raise httpx.NetworkError(f"HTTP {r.status_code}")
            except httpx.TransportError as exc:
                failures, last_exc = failures + 1, exc
                if deadline is None and failures > self.settings.max_retries:
                    raise APIConnectionError(f"waiting for {proposal_id}: {exc}") from exc
                await asyncio.sleep(min(self.settings.delay(failures - 1), max(0.0, _remaining(deadline))))
                continue
            _core.raise_for(r)
            failures = 0
            last_state = DecisionState.model_validate(r.json())
            if last_state.decided:
                return last_state
        if last_state is None and last_exc is not None:
            raise APIConnectionError(f"waiting for {proposal_id}: {last_exc}") from last_exc
        raise WaitTimeout(proposal_id, last_state)

    async def report(
        self,
        proposal_id: str,
        status: str,
        result: Any = None,
        error: str | None = None,
        receipt_jti: str | None = None,
    ) -> ExecutionPublic:
        body = _core.report_body(status, result, error, receipt_jti)
        r = await self._request("POST", f"/v1/proposals/{proposal_id}/execution", body=body)
        return ExecutionPublic.model_validate(r.json())

    async def cancel(self, proposal_id: str) -> ProposalPublic:
        r = await self._request("POST", f"/v1/proposals/{proposal_id}/cancel")
        return ProposalPublic.model_validate(r.json())
