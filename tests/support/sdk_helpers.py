"""Helpers for SDK and integration tests: a reviewer acting mid-run, a connection-dropping proxy."""

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import select

from backend.core.db import read_session
from models.proposals import Execution, Proposal
from tests.support.factories import AgentCreds


class Reviewer(threading.Thread):
    """Waits for the agent's next pending proposal in the queue, then decides it (mid-run)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        agent: AgentCreds,
        verdict: str = "approve",
        edited_payload: dict[str, Any] | None = None,
        reason_codes: list[str] | None = None,
        comment: str = "",
        delay: float = 0.2,
        count: int = 1,
    ) -> None:
        super().__init__(daemon=True)
        self.base_url, self.headers, self.agent = base_url, headers, agent
        self.body: dict[str, Any] = {"verdict": verdict, "comment": comment}
        if reason_codes:
            self.body["reason_codes"] = reason_codes
        if edited_payload is not None:
            self.body["edited_payload"] = edited_payload
            if not comment and not reason_codes:  # an edit needs a reason
                self.body["comment"] = "corrected by the reviewer"
        self.delay, self.count = delay, count
        self.decided: list[dict[str, Any]] = []
        self.error: str | None = None
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as c:
            while time.monotonic() < deadline and len(self.decided) < self.count:
                params = {"agent": self.agent.name, "status": "pending"}
                items = c.get("/v1/queue", params=params).json().get("items", [])
                if not items:
                    time.sleep(0.05)
                    continue
                time.sleep(self.delay)  # let the agent start waiting first
                r = c.post(f"/v1/proposals/{items[0]['id']}/decisions", json=self.body)
                if r.status_code != 201:
                    self.error = r.text
                    return
                self.decided.append(r.json())

    def finish(self, timeout: float = 30) -> list[dict[str, Any]]:
        self.join(timeout)
        assert self.error is None, self.error
        return self.decided


def proposals_of(agent: AgentCreds) -> list[Proposal]:
    with read_session() as session:
        return list(session.exec(select(Proposal).where(Proposal.agent_id == agent.id)).all())


def receipt_jti_of(proposal_id: str) -> str | None:
    """The receipt jti the agent reported its execution with (None: no execution, or none sent)."""
    with read_session() as session:
        execution = session.get(Execution, proposal_id)
        return execution.receipt_jti if execution is not None else None


@contextlib.contextmanager
def tampered_payload(proposal_id: str, changes: dict[str, Any]) -> Iterator[None]:
    """Someone with database access changes an approved proposal's payload (the receipt was
    signed over the original); put back afterwards: the session's database must still verify."""
    from sqlmodel import update

    from backend.core.db import transaction

    with read_session() as session:
        original = dict(session.get(Proposal, proposal_id).payload)  # type: ignore[union-attr]

    def write(payload: dict[str, Any]) -> None:
        with transaction() as session:
            session.execute(
                update(Proposal).where(Proposal.id == proposal_id).values(payload=payload)  # type: ignore[arg-type]
            )

    write({**original, **changes})
    try:
        yield
    finally:
        write(original)


def age_idempotency_keys(agent: AgentCreds, hours: float) -> int:
    """Make the agent's idempotency keys `hours` old and run the real purge: the window passed."""
    from datetime import timedelta

    from sqlmodel import update

    from backend.core.db import transaction
    from backend.proposals import idempotency
    from models.common import utcnow
    from models.idempotency import IdempotencyRecord

    with transaction() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.agent_id == agent.id)  # type: ignore[arg-type]
            .values(created_at=utcnow() - timedelta(hours=hours))
        )
        return idempotency.purge_expired(session)


@dataclass
class Rule:
    pattern: str
    action: str  # "drop_request": cut before the server sees it; "drop_response": after it answered
    times: int = 1
    hits: int = 0


@dataclass
class DroppingProxy:
    """A loopback TCP proxy that cuts chosen HTTP exchanges, like a flaky network would."""

    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _match(self, line: str) -> str:
        with self._lock:
            for rule in self.rules:
                if rule.hits < rule.times and re.match(rule.pattern, line):
                    rule.hits += 1
                    self.log.append((line, rule.action))
                    return rule.action
            self.log.append((line, "pass"))
            return "pass"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        state = {"drop": False}

        def cut() -> None:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

        def down() -> None:
            while True:
                try:
                    data = upstream.recv(65536)
                except OSError:
                    return
                if not data or state["drop"]:
                    cut()
                    return
                try:
                    client.sendall(data)
                except OSError:
                    return

        threading.Thread(target=down, daemon=True).start()
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                cut()
                return
            if re.match(rb"^[A-Z]+ /", data):
                action = self._match(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                if action == "drop_request":
                    cut()
                    return
                state["drop"] = action == "drop_response"
            try:
                upstream.sendall(data)
            except OSError:
                return
