"""`signoff`: the one command line. Works on the database directly, so an operator can
bootstrap a fresh install (migrate, create an agent and its key) without a login."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from backend import on_commit
from backend.agents import keys, lookup
from backend.agents import service as agent_service
from backend.cli.common import OPERATOR, GuardedGroup, JsonFlag, Port, api_errors, emit, err, fail, guard, out
from backend.cli.evals import eval_app, export_command
from backend.cli.trust import audit_app, db_app, receipt_app
from backend.core import schema
from backend.core.db import get_engine, read_session, transaction
from backend.core.errors import ApiError
from backend.core.logging import configure_logging
from models.agents import AgentCreate, ApiKeyCreate, Dial

app = typer.Typer(
    cls=GuardedGroup,
    help="Signoff: human approval for the actions of AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
agents_app = typer.Typer(help="Create and manage agents.", no_args_is_help=True)
keys_app = typer.Typer(help="Mint and revoke agents' API keys.", no_args_is_help=True)
dial_app = typer.Typer(help="Autonomy dials.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(receipt_app, name="receipt")
app.add_typer(db_app, name="db")
app.add_typer(dial_app, name="dial")
app.add_typer(eval_app, name="eval")
app.command("export")(export_command)


@app.callback()
def _start() -> None:
    """Signoff: human approval for the actions of AI agents."""
    # Logs go to standard error, so that standard output holds only the command's answer;
    # warnings only, unless SIGNOFF_LOG_LEVEL asks for more (`serve` sets the server's own).
    configure_logging(os.environ.get("SIGNOFF_LOG_LEVEL", "WARNING"))
    # What a command changes is audited, and webhook events, wake-ups follow: see on_commit.
    on_commit.install()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to this version."""
    try:
        schema.upgrade(get_engine())
    except SQLAlchemyError as exc:
        fail(f"Migration failed: {exc}")
    err.print(f"Schema at {schema.current_revision(get_engine())}.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, Port(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Run the HTTP API (refuses to start on an out-of-date schema)."""
    import uvicorn

    from backend.core.server import uvicorn_options

    guard()
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        **uvicorn_options(),
    )


@agents_app.command("create")
def agents_create(
    name: str,
    grant: Annotated[
        list[str] | None, typer.Option("--grant", help="Action type to grant (repeatable).")
    ] = None,
    dial: Annotated[list[str] | None, typer.Option("--dial", help="ACTION_TYPE=MODE (repeatable).")] = None,
    owner: Annotated[str, typer.Option(help="Who answers for this agent.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an agent, granted the given action types."""
    guard()
    dials: dict[str, Dial] = {}
    for item in dial or []:
        action, sep, mode = item.partition("=")
        if not sep or mode not in Dial.__members__:
            fail(
                f"--dial takes ACTION_TYPE=MODE with MODE one of {', '.join(Dial.__members__)}; got {item!r}."
            )
        dials[action] = Dial(mode)
    try:
        spec = AgentCreate(name=name, owner=owner, grants=grant or [], dials=dials)
    except ValueError as exc:
        fail(f"Invalid agent: {exc}")
    with api_errors(), transaction() as session:
        view = agent_service.create(session, spec, OPERATOR)
    emit(view, as_json) if as_json else out.print(f"Created agent {view['name']} ({view['id']}).")


@agents_app.command("list")
def agents_list(as_json: JsonFlag = False) -> None:
    """List agents."""
    guard()
    with read_session() as session:
        page = agent_service.list_agents(session, limit=agent_service.MAX_LIMIT)
    if as_json:
        emit(page["items"], True)
        return
    table = Table("name", "id", "suspended", "grants")
    for a in page["items"]:
        table.add_row(
            a["name"],
            a["id"],
            "yes" if a["suspended"] else "no",
            ", ".join(f"{g['action_type']}={g['dial']}" for g in a["grants"]),
        )
    out.print(table)


def _set_suspended(name: str, suspended: bool, reason: str, as_json: bool) -> None:
    guard()
    with api_errors(), transaction() as session:
        view = agent_service.set_suspended(session, lookup.find(session, name), suspended, OPERATOR, reason)
    emit(view, True) if as_json else out.print(f"{view['name']}: {'suspended' if suspended else 'resumed'}.")


@agents_app.command("suspend")
def agents_suspend(name: str, reason: Annotated[str, typer.Option()] = "", as_json: JsonFlag = False) -> None:
    """Suspend an agent: every request it makes is refused."""
    _set_suspended(name, True, reason, as_json)


@agents_app.command("resume")
def agents_resume(name: str, reason: Annotated[str, typer.Option()] = "", as_json: JsonFlag = False) -> None:
    """Resume a suspended agent."""
    _set_suspended(name, False, reason, as_json)


@dial_app.command("set")
def dial_set(
    agent: str,
    action_type: str,
    mode: str,
    reason: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Set an agent's dial for one action type: observe, draft, approve or execute."""
    guard()
    if mode not in Dial.__members__:
        fail(f"MODE must be one of {', '.join(Dial.__members__)}; got {mode!r}.")
    with api_errors(), transaction() as session:
        view = agent_service.set_dial(
            session, lookup.find(session, agent), action_type, Dial(mode), OPERATOR, reason
        )
    emit(view, True) if as_json else out.print(f"{view['name']}: {action_type} dial set to {mode}.")


@keys_app.command("create")
def keys_create(
    agent: str,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    expires_in_days: Annotated[int | None, typer.Option(help="Days until the key expires.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mint an API key for an agent. The key is printed once and never again."""
    guard()
    try:
        spec = ApiKeyCreate(name=name, expires_in_days=expires_in_days)
    except ValueError as exc:
        fail(f"Invalid key options: {exc}")
    with api_errors(), transaction() as session:
        created = keys.create_key(session, lookup.find(session, agent), spec, OPERATOR)
    if as_json:
        emit(created.model_dump(mode="json"), True)
    else:
        out.print(f"Key {created.id} for {agent} (expires {created.expires_at:%Y-%m-%d}). Store it now:")
        sys.stdout.write(created.key + "\n")


@keys_app.command("list")
def keys_list(agent: str, as_json: JsonFlag = False) -> None:
    """List an agent's keys (never the secrets)."""
    guard()
    with api_errors(), read_session() as session:
        rows = keys.list_keys(session, lookup.find(session, agent))
    data = [r.model_dump(mode="json") for r in rows]
    if as_json:
        emit(data, True)
        return
    table = Table("id", "prefix", "name", "expires", "revoked")
    for k in data:
        table.add_row(k["id"], k["prefix"], k["name"], k["expires_at"] or "-", k["revoked_at"] or "-")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(agent: str, key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke one of an agent's keys, effective at once."""
    guard()
    with api_errors(), transaction() as session:
        revoked = keys.revoke_key(session, lookup.find(session, agent), key_id, OPERATOR)
    emit(revoked.model_dump(mode="json"), True) if as_json else out.print(f"Revoked key {key_id}.")


policy_app = typer.Typer(help="Cedar policies: validate and apply.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _read_policy(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {path}: {exc}")


def _check_policy(path: Path, text: str) -> list[str]:
    """Cedar's verdict on the file; errors print as FILE:LINE:COLUMN: message, exit 1."""
    from backend.controls.policy import gate
    from backend.controls.policy.text import PolicyError, lint

    try:
        ids = list(gate.compile_text(text).ids)
        lint(text)
        return ids
    except PolicyError as exc:
        where = ":".join(str(p) for p in (path, exc.line, exc.column) if p is not None)
        fail(f"{where}: {exc.message}")


@policy_app.command("validate")
def policy_validate(file: Path, as_json: JsonFlag = False) -> None:
    """Check a .cedar file without applying it (no database needed)."""
    ids = _check_policy(file, _read_policy(file))
    if as_json:
        emit({"valid": True, "policy_ids": ids}, True)
    else:
        out.print(f"[green]valid[/green]: {len(ids)} policies: {', '.join(ids)}", highlight=False)


@policy_app.command("apply")
def policy_apply(
    file: Path,
    comment: Annotated[str, typer.Option(help="Why this change (kept with the version).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Validate a .cedar file and make it the next policy version (audited)."""
    from backend.controls.policy import versions as policies

    text = _read_policy(file)
    _check_policy(file, text)
    guard()
    with api_errors():
        try:
            with transaction() as session:
                view = policies.replace(session, text, comment or f"applied from {file.name}", OPERATOR)
        except ApiError as exc:
            if exc.code != "invalid_policy":
                raise
            where = ":".join(str(p) for p in (file, exc.extra.get("line"), exc.extra.get("column")) if p)
            fail(f"{where}: {exc.message}")
    if as_json:
        emit(view, True)
    else:
        out.print(f"Policy version {view['version']} is now current ({len(view['policy_ids'])} policies).")


@app.command()
def demo(
    ui_port: Annotated[int, Port(help="Console port.")] = 8501,
    api_port: Annotated[int, Port(help="API port.")] = 8000,
    idp_port: Annotated[int, Port(help="Identity provider (oidc-provider-mock) port.")] = 9400,
    agent_interval: Annotated[float, typer.Option(help="Seconds between the demo agent's proposals.")] = 45.0,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the previous demo database.")] = False,
) -> None:
    """Run the whole product locally: login, API (SQLite), console and a simulated agent."""
    from pathlib import Path

    from backend.demo.run import run_demo

    try:
        run_demo(Path.cwd(), ui_port, api_port, idp_port, agent_interval, fresh=not keep, say=err.print)
    except (RuntimeError, TimeoutError) as exc:
        fail(str(exc))


@app.command()
def ui(
    port: Annotated[int, Port(help="Console port.")] = 8501,
    write_secrets: Annotated[
        bool, typer.Option("--write-secrets", help="Write .streamlit/secrets.toml from these options; stop.")
    ] = False,
    issuer: Annotated[str, typer.Option(help="OIDC issuer, exactly as the provider writes it.")] = "",
    client_id: Annotated[str, typer.Option(help="The console's OIDC client id.")] = "signoff-console",
    client_secret: Annotated[
        str, typer.Option(envvar="SIGNOFF_CONSOLE_CLIENT_SECRET", help="The console's OIDC client secret.")
    ] = "",
    api_url: Annotated[str, typer.Option(help="Where the Signoff API is.")] = "http://127.0.0.1:8000",
    prompt: Annotated[
        str, typer.Option(help="OIDC prompt: login, consent, select_account or none (docs/identity.md).")
    ] = "login",
    scope: Annotated[str, typer.Option(help="OIDC scopes the console asks for.")] = "openid email profile",
) -> None:
    """Run the review console (reads .streamlit/secrets.toml from the current directory)."""
    import os
    import subprocess
    from pathlib import Path

    from backend.demo import stack

    path = Path.cwd() / ".streamlit" / "secrets.toml"
    if write_secrets:
        if not issuer or not client_secret:
            fail("--write-secrets needs --issuer and --client-secret (or SIGNOFF_CONSOLE_CLIENT_SECRET).")
        if path.exists():
            fail(f"{path} exists; edit it, or remove it to write a new one.")
        content = stack.secrets_toml(port, issuer, api_url, client_id, client_secret, prompt, scope)
        err.print(f"Wrote {stack.write_secrets(Path.cwd(), content)}", highlight=False, markup=False)
        return
    if not path.exists():
        fail(
            "No .streamlit/secrets.toml here: it holds the [auth] (OIDC) settings and [signoff] api_url. "
            "Write one with 'signoff ui --write-secrets --issuer ...' (docs/identity.md), "
            "or run 'signoff demo' once to get an example."
        )
    raise typer.Exit(subprocess.call(stack.console_command(port), env=os.environ.copy()))


MCP_TRANSPORTS = ("stdio", "sse", "streamable-http")
mcp_app = typer.Typer(
    help="MCP: the approval queue as tools, or another MCP server behind Signoff.",
    invoke_without_command=True,
)
app.add_typer(mcp_app, name="mcp")


def _mcp_extra() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        fail(f"MCP needs the 'mcp' extra: pip install 'signoff[mcp]' ({exc})")


@mcp_app.callback()
def mcp_server(
    ctx: typer.Context,
    transport: Annotated[str, typer.Option(help="stdio, sse or streamable-http.")] = "stdio",
) -> None:
    """Serve the approval queue to MCP agents (needs the `mcp` extra, SIGNOFF_URL, SIGNOFF_API_KEY)."""
    if ctx.invoked_subcommand is not None:
        return
    if transport not in MCP_TRANSPORTS:
        fail(f"--transport is one of {', '.join(MCP_TRANSPORTS)}; got {transport!r}.", 2)
    _mcp_extra()
    from signoff.integrations.mcp import main

    main(transport)


@mcp_app.command("proxy")
def mcp_proxy(
    upstream: Annotated[
        list[str] | None, typer.Argument(help="The upstream MCP server's command (after --), over stdio.")
    ] = None,
    gate: Annotated[
        list[str] | None, typer.Option("--gate", help="TOOL=ACTION_TYPE: calls need approval (repeatable).")
    ] = None,
    url: Annotated[str, typer.Option(help="The upstream's streamable HTTP URL, instead of a command.")] = "",
    wait: Annotated[float, typer.Option(help="Seconds a gated call waits for its decision.", min=1)] = 3600,
    task_id: Annotated[str, typer.Option(help="Makes retried identical calls find their proposal.")] = "",
) -> None:
    """Put any MCP server behind Signoff: its tools listed unchanged, gated calls run once approved."""
    _mcp_extra()
    import anyio

    from signoff.errors import SignoffError
    from signoff.integrations.mcp_proxy import ProxyConfig, parse_gates, serve_stdio

    try:
        config = ProxyConfig(parse_gates(gate or []), upstream or None, url or None, wait, task_id or None)
        config.target()
    except SignoffError as exc:
        fail(str(exc), 2)
    anyio.run(serve_stdio, config)


if __name__ == "__main__":
    app()
