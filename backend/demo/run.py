"""`signoff demo`: everything on this machine, in one command, until Ctrl-C."""

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from backend.demo import stack
from backend.demo.agent import SimulatedAgent


def banner(ui_port: int, api_port: int, idp_port: int) -> str:
    users = "\n".join(
        f"    {u['sub']:<18} {u['name']:<14} groups: {', '.join(u['groups'])}" for u in stack.USERS
    )
    return (
        "\nSignoff demo is running.\n\n"
        f"  Console   http://localhost:{ui_port}\n"
        f"  API       http://localhost:{api_port}  (OpenAPI: /docs)\n"
        f"  Login     http://localhost:{idp_port}  (oidc-provider-mock: pick a user, one click)\n\n"
        f"  Users (first one approves refunds):\n{users}\n\n"
        "  Open the console, log in as lee-support-lead and approve the first refund.\n"
        "  Logs: signoff-demo-api.log, signoff-demo-console.log, signoff-demo-idp.log.\n"
        "  Press Ctrl-C to stop everything.\n"
    )


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "none"


def run_demo(
    workdir: Path,
    ui_port: int = 8501,
    api_port: int = 8000,
    idp_port: int = 9400,
    agent_interval: float = 45.0,
    fresh: bool = True,
    say: Any = print,
) -> None:
    busy = [p for p in (ui_port, api_port, idp_port) if not stack.port_free(p)]
    if busy:
        raise RuntimeError(
            f"port(s) {', '.join(map(str, busy))} already in use: is another demo running? "
            "Stop it, or pick other ports with --ui-port/--api-port/--idp-port."
        )
    idp_url, api_url = f"http://localhost:{idp_port}", f"http://127.0.0.1:{api_port}"
    db_file = workdir / "signoff-demo.db"
    if fresh:
        for leftover in workdir.glob("signoff-demo.db*"):
            leftover.unlink()
    env = stack.api_env(f"sqlite:///{db_file}", idp_url)
    stopping = threading.Event()
    # Each child and the file its standard error goes to, in the order they were started.
    procs: dict[subprocess.Popen[Any], Path] = {}

    def launch(name: str, args: list[str], **options: Any) -> subprocess.Popen[Any]:
        log = workdir / f"signoff-demo-{name}.log"
        proc = stack.start(args, log=log, **options)
        procs[proc] = log
        return proc

    agent: SimulatedAgent | None = None
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say("Starting the identity provider...")
        idp = launch("idp", stack.idp_command(idp_port))
        say("Preparing the database (SQLite) and the demo agent...")
        stack.cli(env, "migrate")
        stack.cli(env, "agents", "create", "refund-bot", "--grant", "refund", "--owner", "support", "--json")
        key = stack.cli(env, "keys", "create", "refund-bot", "--name", "demo", "--json")["key"]
        stack.wait_http(f"{idp_url}/.well-known/openid-configuration", idp)
        say("Starting the API...")
        api = launch("api", stack.cli_serve(api_port), env=env)
        stack.wait_http(f"{api_url}/healthz", api)
        secrets = stack.write_secrets(workdir, stack.secrets_toml(ui_port, idp_url, api_url))
        say(f"Wrote {secrets}")
        say("Starting the console...")
        console = launch(
            "console", stack.console_command(ui_port), env={**env, "SIGNOFF_API_URL": api_url}, cwd=workdir
        )
        stack.wait_http(f"http://localhost:{ui_port}/_stcore/health", console)
        agent = SimulatedAgent(api_url, key, interval=agent_interval)
        placed = agent.seed_queue()
        agent.start()
        say(f"The simulated support agent placed {placed} refund proposals.")
        say(banner(ui_port, api_port, idp_port))
        while not stopping.wait(1.0):
            for proc, log in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{' '.join(proc.args[:4])} exited unexpectedly; its log: {log} "
                        f"(last lines: {_tail(log)})"
                    )
    finally:
        say("\nStopping...")
        if agent:
            agent.stop()
        for proc in reversed(list(procs)):
            stack.stop(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("Stopped.")
