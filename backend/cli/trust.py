"""`signoff audit`, `signoff receipt`, `signoff db`: verifying the trail, checking receipts
offline, and the database roles."""

import json
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from backend.audit import checkpoints, verification
from backend.cli.common import JsonFlag, emit, err, fail, guard, out
from backend.core import roles
from backend.core.db import get_engine, is_sqlite, read_session
from backend.core.settings import get_settings
from models.audit import AuditVerification
from signoff.errors import ReceiptInvalid
from signoff.receipts import verify_receipt

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
receipt_app = typer.Typer(help="Approval receipts.", no_args_is_help=True)
db_app = typer.Typer(help="The database's roles.", no_args_is_help=True)


def _print(result: AuditVerification, as_json: bool) -> None:
    if as_json:
        emit(result.model_dump(mode="json"), True)
    elif result.ok:
        since = f" from checkpoint {result.checkpoint.seq}" if result.checkpoint and not result.full else ""
        out.print(f"[green]ok[/green]: {result.events} events, {result.checked} checked{since}; intact.")
    else:
        line = " ".join(f"at {result.first_bad}: {result.reason}".split())
        err.print(f"[red]broken[/red] {escape(line)}", highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(
    full: Annotated[
        bool, typer.Option("--full", help="Walk everything and cross-check proposals, decisions, executions.")
    ] = False,
    sink: Annotated[
        str | None, typer.Option(help="A file sink (file:/path) to check the chain against.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Processes for --full (default: one per core)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the chain's MACs and checkpoints and name the first discrepancy (exit 1 if any).
    Without --full, only the events since the latest signed checkpoint."""
    guard()
    with read_session() as session:
        result = (
            # Every core: hashing is CPU-bound, one process walks each part of the chain.
            verification.verify_full(session, sink=sink, workers=workers or os.cpu_count() or 1)
            if full
            else verification.verify_incremental(session)
        )
    _print(result, as_json)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: JsonFlag = False) -> None:
    """Sign the chain's head now and export it to the sink (the API does this on its own)."""
    guard()
    cp = checkpoints.checkpoint_now()
    data = {"seq": cp.seq, "hash": cp.hash, "at": cp.at.isoformat()} if cp else None
    if as_json:
        emit(data, True)
    else:
        out.print(f"Checkpoint at event {cp.seq}." if cp else "The latest checkpoint is already at the head.")


def _jwks(source: str) -> dict[str, object]:
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=10, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        return json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError, httpx.HTTPError) as exc:
        fail(f"Cannot read the key set from {source}: {type(exc).__name__}")


@receipt_app.command("verify")
def receipt_verify(
    token: Annotated[str, typer.Argument(help="The receipt (compact JWS), or @file holding it.")],
    jwks: Annotated[str, typer.Option(help="The JWKS: a URL (…/.well-known/jwks.json) or a file.")],
    payload: Annotated[Path | None, typer.Option(help="A JSON file: the payload to check against.")] = None,
    proposal: Annotated[str | None, typer.Option(help="The proposal id it must be for.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a receipt offline: signature, expiry, and (when given) the proposal and payload."""
    raw = token
    if token.startswith("@"):
        try:
            raw = Path(token[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"Cannot read the receipt {token[1:]}: {type(exc).__name__}")
    body = None
    if payload is not None:
        try:
            body = json.loads(payload.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"Cannot read the payload {payload}: {type(exc).__name__}")
    try:
        claims = verify_receipt(raw, _jwks(jwks), proposal_id=proposal, payload=body)
    except ReceiptInvalid as exc:
        fail(f"receipt refused: {exc.reason}")
    if as_json:
        emit(claims, True)
    else:
        out.print(
            f"[green]ok[/green]: {claims['act']} on proposal {claims['sub']}, approved by "
            f"{', '.join(claims['approvers'])}, payload {claims['payload_sha256'][:12]}…",
            highlight=False,
        )


@db_app.command("grant-app-role")
def grant_app_role(role: Annotated[str, typer.Argument(help="The application's PostgreSQL role.")]) -> None:
    """Give the application role what it needs and nothing more (run as the owner, after migrate)."""
    if is_sqlite(get_settings().database_url):
        fail("Roles are a PostgreSQL feature; SQLite has none.")
    guard()
    try:
        with get_engine().begin() as conn:
            roles.grant_app_role(conn, role)
    except (ValueError, SQLAlchemyError) as exc:
        fail(f"Cannot grant: {type(exc).__name__}: {exc}")
    out.print(f"Granted {role} the application's privileges.")
