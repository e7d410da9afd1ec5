"""What every `signoff` subcommand shares: output, errors, the schema guard."""

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from backend.core import schema
from backend.core.db import get_engine
from backend.core.errors import ApiError

out = Console()
err = Console(stderr=True)
OPERATOR = "system:cli"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


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
