"""Signed checkpoints of the audit chain's head, and their export to an external sink.

A checkpoint says, signed with the signing key (Ed25519, ``backend/core/keys.py``): "at
this moment the chain had ``seq`` events and ended in ``hash``". The API writes one every
``audit_checkpoint_seconds`` when the head moved (:class:`Checkpointer`); ``signoff audit
checkpoint`` writes one now. Each is also appended to the sink (``audit_sink``): a file
(``file:/path``, one JSON line each) or a webhook (an ``https://`` URL), out of reach of
someone who can only write the database. ``GET /v1/audit/verify`` starts from the latest
checkpoint, so the Audit page checks only what was written since.
"""

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlmodel import Session

from backend.audit.chain import canonical_at
from backend.core.canonical import canonical_json
from backend.core.db import transaction
from backend.core.keys import Keys, get_keys
from backend.core.settings import get_settings
from models.audit import AuditCheckpoint, AuditHead
from models.common import utcnow

log = structlog.get_logger()


@dataclass(frozen=True)
class Claims:
    seq: int
    hash: str
    at: str


def sign(keys: Keys, seq: int, digest: str, at: datetime) -> str:
    body = canonical_json({"seq": seq, "hash": digest, "at": canonical_at(at)})
    return keys.sign_compact(body)


def open_token(keys: Keys, token: str) -> Claims:
    """The claims of a checkpoint whose signature holds; ValueError otherwise."""
    try:
        obj = jws.deserialize_compact(token, keys.key_set(), algorithms=["EdDSA"])
        data = json.loads(obj.payload)
        return Claims(int(data["seq"]), str(data["hash"]), str(data["at"]))
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"bad checkpoint signature ({type(exc).__name__})") from None


def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()  # type: ignore[attr-defined]


def write(session: Session) -> AuditCheckpoint | None:
    """Checkpoint the head now (None if the latest checkpoint is already at it). The head's
    row lock keeps replicas from checkpointing the same head twice."""
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()  # type: ignore[arg-type]
    last = latest(session)
    if head.seq == 0 or (last is not None and last.seq >= head.seq):
        return None
    at = utcnow()
    cp = AuditCheckpoint(seq=head.seq, hash=head.hash, at=at, token=sign(get_keys(), head.seq, head.hash, at))
    session.add(cp)
    session.flush()
    return cp


def checkpoint_now() -> AuditCheckpoint | None:
    """Write a checkpoint in a transaction of its own and export it to the sink."""
    with transaction() as session:
        cp = write(session)
        if cp is not None:
            session.expunge(cp)
    if cp is not None:
        export(cp)
    return cp


def _line(cp: AuditCheckpoint) -> dict[str, Any]:
    return {"seq": cp.seq, "hash": cp.hash, "at": canonical_at(cp.at), "token": cp.token}


def export(cp: AuditCheckpoint, sink: str | None = None) -> None:
    """Append the checkpoint to the sink; a sink that fails is logged, never fails the caller
    (the checkpoint is in the database either way, and the next one carries the head on)."""
    target = get_settings().audit_sink if sink is None else sink
    if not target:
        return
    line = _line(cp)
    try:
        if target.startswith("file:"):
            with Path(target.removeprefix("file:")).open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, sort_keys=True) + "\n")
        elif target.startswith(("https://", "http://")):
            httpx.post(target, json=line, timeout=5.0, follow_redirects=False).raise_for_status()
        else:
            log.error("audit_sink_unknown", sink=target.split(":", 1)[0])
    except (OSError, httpx.HTTPError) as exc:
        log.error("audit_sink_failed", error=type(exc).__name__)


def sink_latest(sink: str) -> Claims | None:
    """The last checkpoint a file sink holds (None for an empty or a webhook sink)."""
    if not sink.startswith("file:"):
        return None
    path = Path(sink.removeprefix("file:"))
    if not path.exists():
        return None
    last = None
    with path.open(encoding="utf-8") as f:
        for raw in f:
            if raw.strip():
                last = raw
    if last is None:
        return None
    return open_token(get_keys(), json.loads(last)["token"])


class Checkpointer(threading.Thread):
    """Writes a checkpoint every `interval` seconds when the head moved."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="signoff-audit-checkpoints", daemon=True)
        self.interval = interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                checkpoint_now()
            except Exception:
                log.exception("audit_checkpoint_failed")

    def stop(self) -> None:
        self._stop.set()
