"""What every `signoff` subcommand shares: output, errors, the schema guard."""

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from typer.core import TyperGroup

from backend.core import schema
from backend.core.db import get_engine
from backend.core.errors import ApiError

out = Console()
err = Console(stderr=True)
OPERATOR = "system:cli"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def say_error(message: str) -> None:
    """One line on stderr: the message is plain text (``[auth]`` is not markup) and never
    wrapped at the terminal's width."""
    line = " ".join(str(message).split())
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    say_error(message)
    raise typer.Exit(code)


def Port(help: str) -> Any:
    """A TCP port option: 1 to 65535, so 99999 is an error rather than a random port."""
    return typer.Option(help=help, min=1, max=65535)


# Click's exceptions, wherever this Typer takes click from (newer Typers vendor it).
_click = sys.modules[typer.BadParameter.__module__]
_ABORT = (typer.Abort, getattr(_click, "Abort", typer.Abort))
_NoArgsIsHelp: type[Exception] = getattr(_click, "NoArgsIsHelpError", type("_Never", (Exception,), {}))


class GuardedGroup(TyperGroup):
    """The root command: whatever goes wrong in any subcommand ends as one line on stderr and
    a non-zero exit, never a traceback. Usage errors exit 2 (as click's do), others 1."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, *rest: Any, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, *rest, standalone_mode=False, **kwargs)
        try:
            rv = super().main(args, *rest, standalone_mode=False, **kwargs)
        except _NoArgsIsHelp as exc:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except _click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            say_error(f"{exc.format_message()}{hint}")
            sys.exit(exc.exit_code)
        except _click.ClickException as exc:
            say_error(exc.format_message())
            sys.exit(exc.exit_code)
        except _ABORT:
            say_error("Aborted.")
            sys.exit(1)
        except Exception as exc:  # the guard: a bug or an unforeseen failure, still one line
            say_error(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")
    else:
        out.print(data)


def guard() -> None:
    """Refuse to work on a schema this code does not match."""
    try:
        if not schema.is_current(get_engine()):
            fail("The database schema is out of date. Run 'signoff migrate' first.")
    except OperationalError as exc:
        fail(f"Cannot reach the database: {exc.orig}")


class api_errors:
    """Turn a service's ApiError into a one-line CLI error with a non-zero exit."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if isinstance(exc, ApiError):
            fail(exc.message, 2)
        if isinstance(exc, SQLAlchemyError):
            fail(f"Database error: {exc.__class__.__name__}")
        return False
