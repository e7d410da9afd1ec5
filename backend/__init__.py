"""Signoff backend: the FastAPI app, its services, auth, CLI and migrations."""
