"""Every `signoff` error is one line on stderr with a non-zero exit, never a traceback."""

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app
from tests.support.databases import Database
from tests.support.env import pointed_at
from tests.support.servers import ROOT


def run(db_url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env={"SIGNOFF_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin", "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or ROOT,
    )


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
    assert run(url, "migrate").returncode == 0
    return url


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


Invoke = Callable[..., Result]


@pytest.fixture
def cli(db_url: str) -> Iterator[Invoke]:
    """The command in this process (the same root guard as the entry point), on `db_url`."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        r = runner.invoke(app, list(args), env={"COLUMNS": "60"})
        return Result(r.exit_code, r.stdout, r.stderr)

    with pointed_at(Database("sqlite", db_url)):
        yield invoke


def one_line_error(result: Result | subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # not wrapped at 60 columns either
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "-o", "/nonexistent/x"], "/nonexistent/x"),
        (["export", "--agent", "nobody"], "nobody"),
        (["export", "--format", "xml"], "jsonl or csv"),
        (["mcp", "--transport", "bogus"], "--transport"),
        (["mcp", "proxy", "--gate", "write_file"], "TOOL=ACTION_TYPE"),
        (["mcp", "proxy", "--gate", "write_file=file_write"], "--url"),
        (["serve", "--port", "99999"], "--port"),
        (["demo", "--api-port", "0"], "--api-port"),
        (["ui", "--port", "70000"], "--port"),
        (["agents", "create"], "Missing argument"),
        (["agents", "list", "--bogus"], "--bogus"),
        (["agents", "frobnicate"], "frobnicate"),
        (["keys", "create", "nobody"], "nobody"),
        (["dial", "set", "nobody", "refund", "execute"], "nobody"),
        (["dial", "set", "nobody", "refund", "sideways"], "MODE"),
        (["policy", "validate", "/nonexistent.cedar"], "/nonexistent.cedar"),
        (["eval", "suite", "import", "/nonexistent.jsonl"], "/nonexistent.jsonl"),
    ],
)
def test_errors_are_one_line(cli: Invoke, args: list[str], expected: str) -> None:
    assert expected in one_line_error(cli(*args))


def test_the_entry_point_prints_no_traceback(db_url: str) -> None:
    """The same, through `python -m backend.cli` (the installed `signoff` is this app)."""
    assert "--transport" in one_line_error(run(db_url, "mcp", "--transport", "bogus"))
    assert "/nonexistent/x" in one_line_error(run(db_url, "export", "-o", "/nonexistent/x"))


def test_ui_without_secrets_names_the_sections(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_error(cli("ui"))
    assert "[auth]" in line and "[signoff]" in line  # not eaten as markup


def test_ui_writes_secrets_with_prompt_and_scope(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["ui", "--write-secrets", "--issuer", "https://tenant.example.com/", "--client-id", "console"]
    args += ["--client-secret", "s3cret", "--prompt", "consent", "--scope", "openid email profile groups"]
    written = cli(*args)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / ".streamlit" / "secrets.toml").read_text()
    assert 'server_metadata_url = "https://tenant.example.com/.well-known/openid-configuration"' in text
    assert 'prompt = "consent"' in text and 'scope = "openid email profile groups"' in text
    assert 'client_secret = "s3cret"' in text
    import tomllib

    parsed = tomllib.loads(text)
    assert parsed["auth"]["client_kwargs"] == {"prompt": "consent", "scope": "openid email profile groups"}
    assert "exists" in one_line_error(cli(*args))
    monkeypatch.chdir(tmp_path / ".streamlit")
    assert "--issuer" in one_line_error(cli("ui", "--write-secrets"))


def test_an_unforeseen_failure_is_one_line_too(tmp_path: Path) -> None:
    """No command anticipates a database URL SQLAlchemy cannot parse: the root guard does."""
    line = one_line_error(run("nonsense:://", "agents", "list"))
    assert "nonsense" in line or "URL" in line


def test_help_and_success_still_exit_zero(cli: Invoke) -> None:
    assert cli("--help").returncode == 0
    listed = cli("agents", "list", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"
