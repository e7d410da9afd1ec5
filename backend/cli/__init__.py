"""The `signoff` command line; `backend.cli:app` is its entry point (``pyproject.toml``)."""

from backend.cli.main import app

__all__ = ["app"]
