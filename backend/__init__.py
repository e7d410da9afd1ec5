"""Signoff backend: the FastAPI app, one package per domain, the CLI and migrations (docs/architecture.md)."""
