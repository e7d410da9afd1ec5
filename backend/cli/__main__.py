"""``python -m backend.cli``: the same commands as ``signoff``."""

from backend.cli.main import app

app()
