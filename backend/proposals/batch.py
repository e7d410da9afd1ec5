"""The write side of placing a batch of proposals: one transaction, many answers.

:class:`Batch` lives for one write transaction (see ``placement``). It answers each
proposal in turn, keeps the rows it creates and writes them together in :meth:`Batch.close`,
just before the commit; the audit events follow in the same transaction.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlmodel import Session

from backend.agents import keys as api_keys
from backend.audit import chain as audit
from backend.controls import admission, autonomy
from backend.controls.budgets import ledger
from backend.controls.policy import gate
from backend.core.bulk import insert_rows, pipelined
from backend.core.errors import ApiError
from backend.evals import rollup
from backend.evals import runs as eval_runs
from backend.proposals import idempotency, receipts
from backend.proposals.views import proposal_public
from models.action_types import ActionType
from models.agents import Agent, Dial, Grant
from models.audit import AuditAction
from models.common import new_id, utcnow
from models.evals import EvalRunProposal
from models.idempotency import IdempotencyRecord
from models.proposals import Decision, Proposal, ProposalCreate, Status, Verdict
from models.receipts import Receipt

MODE_STATUS = {
    Dial.observe: Status.observed,
    Dial.draft: Status.pending,
    Dial.approve: Status.pending,
    Dial.execute: Status.approved,
}


@dataclass(frozen=True)
class Placement:
    """One request to place a proposal. ``key_id`` is the API key that sent it, re-checked
    in the write transaction (None for in-process callers that authenticated otherwise)."""

    agent_id: str
    body: ProposalCreate
    request_hash: str
    idempotency_key: str | None = None
    key_id: str | None = None
    # The request's W3C traceparent (tracing on), stored so later work joins its trace.
    traceparent: str | None = None


@dataclass(frozen=True)
class Placed:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Configuration:
    """What placing needs of the agent and the action type (its configuration), read
    outside the write lock."""

    agent: Agent | None
    grant: Grant | None
    action_type: ActionType | None
    has_budgets: bool


@dataclass
class Prepared:
    """Everything that depends on the request alone, worked out before the write lock."""

    config: Configuration
    context: dict[str, Any]
    evidence: list[dict[str, Any]]
    audit_evidence: list[dict[str, Any]]
    payload_sha256: str
    invalid: Exception | None = None
    verdict: gate.GateOutcome | None = None

    @classmethod
    def failed(cls, config: Configuration, error: Exception) -> "Prepared":
        """An item whose preparation raised: its answer is ``error``, after admission."""
        return cls(config, context={}, evidence=[], audit_evidence=[], payload_sha256="", invalid=error)

    @classmethod
    def of(cls, body: ProposalCreate, config: Configuration) -> "Prepared":
        evidence = [e.model_dump(exclude_none=True, mode="json") for e in body.evidence]
        return cls(
            config=config,
            context=body.context.model_dump(exclude_none=True),
            evidence=evidence,
            audit_evidence=[
                {"kind": e["kind"], "title": e.get("title"), "uri": e.get("uri"), "sha256": e.get("sha256")}
                for e in evidence
            ],
            payload_sha256=hashlib.sha256(
                orjson.dumps(body.payload, option=orjson.OPT_SORT_KEYS)
            ).hexdigest(),
        )


@dataclass
class Batch:
    session: Session
    kill_switch: bool
    agents: dict[str, Agent] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    answers: idempotency.Answers = field(default_factory=idempotency.Answers)
    _ledgers: dict[str, ledger.Ledger] = field(default_factory=dict)
    _proposals: list[dict[str, Any]] = field(default_factory=list)
    _decisions: list[dict[str, Any]] = field(default_factory=list)
    _links: list[dict[str, Any]] = field(default_factory=list)
    _receipts: list[dict[str, Any]] = field(default_factory=list)

    def open_ledger(self, agent: Agent, windows: tuple[list[int], list[str]]) -> None:
        self._ledgers[agent.id] = ledger.Ledger(self.session, agent, windows)

    # --- answering one proposal -----------------------------------------------------------

    def key_error(self, key_id: str | None) -> ApiError | None:
        if key_id is None:
            return None
        key = self.keys.get(key_id)
        if key is None:
            return api_keys.invalid_key()
        return api_keys.key_refusal(key.revoked_at, key.expires_at)

    def admission_refusal(self, agent: Agent, config: Configuration, action_type: str) -> ApiError | None:
        """Steps 1-2 of placing (``docs/architecture.md``): a stopped agent, an unknown or
        ungranted action type. Refusals by policy of the house are audited."""
        stopped = admission.refusal(agent, self.kill_switch, admission.Asker.agent)
        if stopped is not None:
            code, error = stopped.code, stopped
        elif config.action_type is None:
            return ApiError(
                422, "unknown_action_type", f"No action type named {action_type!r}.", param="action_type"
            )
        elif config.grant is None:
            code = "action_not_allowed"
            message = f"This agent is not granted the action type {action_type!r}."
            error = ApiError(403, code, message, param="action_type")
        else:
            return None
        data = {"code": code, "action_type": action_type}
        audit.record(
            self.session, f"agent:{agent.id}", AuditAction.PROPOSAL_REFUSED, f"agent:{agent.id}", data
        )
        return error

    def replay(self, agent_id: str, key: str, request_hash: str) -> Placed | ApiError | None:
        """What this key already answered (here or in an earlier request), or None."""
        try:
            stored = self.answers.replay(agent_id, key, request_hash)
        except ApiError as reused:
            return reused
        return None if stored is None else Placed(stored.status, stored.body, replayed=True)

    def remember(self, agent_id: str, key: str, request_hash: str, placed: Placed) -> None:
        self.answers.remember(agent_id, key, request_hash, placed.status, placed.body)

    def place(
        self,
        agent: Agent,
        body: ProposalCreate,
        key: str | None,
        prep: Prepared,
        traceparent: str | None = None,
    ) -> Placed | ApiError:
        action_type, grant, verdict = prep.config.action_type, prep.config.grant, prep.verdict
        assert action_type is not None and grant is not None and verdict is not None
        context = prep.context
        account = self._ledgers[agent.id]
        try:
            flags = account.charge(action_type, context, prep.config.has_budgets)
        except ApiError as refused:  # a hard budget: refused, audited like any refusal
            data = {"code": refused.code, "action_type": action_type.name, **refused.extra}
            actor = f"agent:{agent.id}"
            audit.record(self.session, actor, AuditAction.PROPOSAL_REFUSED, actor, data)
            return refused
        flags += account.record_outcome(verdict.outcome)
        eval_tag = eval_runs.match_run(self.session, agent.id, context)
        if eval_tag is not None:
            flags.append(eval_runs.EVAL_FLAG)
        mode = autonomy.effective_mode(
            Dial(grant.dial),
            breaker_tripped=agent.breaker_tripped_at is not None,
            outcome=verdict.outcome,
            eval_run=eval_tag is not None,
        )
        now = utcnow()
        row = self._proposal_row(agent, action_type, grant, body, key, prep, mode, flags, now)
        row["traceparent"] = traceparent
        decision = self._policy_decision(row, mode, verdict, now)
        if eval_tag is not None:
            self._links.append({"proposal_id": row["id"], "run_id": eval_tag[0], "case_id": eval_tag[1]})
        self._audit(agent, row, prep, verdict, mode, decision)
        view = proposal_public(
            Proposal.model_construct(**row),
            decisions=[Decision.model_construct(**decision)] if decision else [],
            agent_name=agent.name,
            approvals_required=action_type.approvals_required,
        )
        return Placed(201, view)

    def _proposal_row(
        self,
        agent: Agent,
        action_type: ActionType,
        grant: Grant,
        body: ProposalCreate,
        key: str | None,
        prep: Prepared,
        mode: Dial | None,
        flags: list[str],
        now: datetime,
    ) -> dict[str, Any]:
        verdict = prep.verdict
        assert verdict is not None
        expires_in = body.expires_in_seconds or action_type.default_expiry_seconds
        row: dict[str, Any] = {
            "id": new_id(),
            "agent_id": agent.id,
            "action_type": action_type.name,
            "action_type_version": action_type.version,
            "summary": body.summary,
            "payload": body.payload,
            "evidence": prep.evidence,
            "context": prep.context,
            "status": (MODE_STATUS[mode] if mode else Status.rejected).value,
            "mode": (mode or Dial(grant.dial)).value,
            "dial": grant.dial,
            "policy_version": verdict.version,
            "policy_outcome": verdict.outcome,
            "policy_ids": verdict.policy_ids,
            "flags": flags,
            "idempotency_key": key,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(seconds=expires_in),
            "decided_at": now if mode is None or mode == Dial.execute else None,
            "claimed_by": None,
            "claimed_by_name": None,
            "claim_expires_at": None,
        }
        self._proposals.append(row)
        return row

    def _policy_decision(
        self, row: dict[str, Any], mode: Dial | None, verdict: gate.GateOutcome, now: datetime
    ) -> dict[str, Any] | None:
        """The gate's own decision, when it decided without a human (deny, or execute)."""
        if row["decided_at"] is None:
            return None
        decision = {
            "id": new_id(),
            "proposal_id": row["id"],
            "verdict": (Verdict.reject if mode is None else Verdict.approve).value,
            "decided_by": "policy",
            "reviewer_sub": None,
            "reviewer_email": None,
            "reviewer_name": None,
            "reviewer_groups": [],
            "reason_codes": ["policy_denied"] if mode is None else [],
            "comment": "",
            "edited_payload": None,
            "policy_version": verdict.version,
            "policy_ids": verdict.policy_ids,
            "created_at": now,
        }
        self._decisions.append(decision)
        return decision

    def _audit(
        self,
        agent: Agent,
        row: dict[str, Any],
        prep: Prepared,
        verdict: gate.GateOutcome,
        mode: Dial | None,
        decision: dict[str, Any] | None,
    ) -> None:
        subject = f"proposal:{row['id']}"
        created = {
            "action_type": row["action_type"],
            "status": row["status"],
            "mode": row["mode"],
            "dial": row["dial"],
            "summary": row["summary"],
            "flags": row["flags"],
            "payload_sha256": prep.payload_sha256,
            "evidence": prep.audit_evidence,
            "context": prep.context,
        }
        audit.record(self.session, f"agent:{agent.id}", AuditAction.PROPOSAL_CREATED, subject, created)
        evaluated = {
            "version": verdict.version,
            "outcome": verdict.outcome,
            "policy_ids": verdict.policy_ids,
            "effective_mode": mode.value if mode else None,
            "errors": verdict.errors,
        }
        audit.record(self.session, "system", AuditAction.POLICY_EVALUATED, subject, evaluated)
        if decision is not None:
            decided = {
                "verdict": decision["verdict"],
                "decided_by": "policy",
                "reason_codes": decision["reason_codes"],
                "policy_version": verdict.version,
            }
            if decision["verdict"] == Verdict.approve.value:
                receipt = receipts.issue(
                    row["id"], row["action_type"], row["payload"], [], verdict.version, decision["created_at"]
                )
                self._receipts.append(receipt.row)
                decided["receipt"] = receipt.audit_data()
            audit.record(self.session, "system", AuditAction.PROPOSAL_DECIDED, subject, decided)

    # --- writing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Write the batch's rows; an idempotency key committed meanwhile by another replica
        raises ``IntegrityError`` here, and the whole batch is run again."""
        conn = self.session.connection()
        with pipelined(conn):
            ledger.close(self.session, list(self._ledgers.values()))
            for model, rows in (
                (Proposal, self._proposals),
                (Decision, self._decisions),
                (EvalRunProposal, self._links),
                (Receipt, self._receipts),
                (IdempotencyRecord, self.answers.rows),
            ):
                insert_rows(conn, model.__table__, rows)  # type: ignore[attr-defined]
            rollup.placed(self.session, self._proposals, self._decisions, self._links)
            # The audit head's lock rides on this round trip instead of costing one at commit.
            audit.lock_head(self.session)
