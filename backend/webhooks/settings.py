"""Webhook delivery settings, read from `SIGNOFF_WEBHOOK_*` environment variables."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNOFF_WEBHOOK_", extra="ignore")

    enabled: bool = True
    timeout_seconds: float = 5.0
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 6 * 3600
    retry_hours: float = 24.0
    poll_seconds: float = 1.0
    concurrency: int = 8
    lease_seconds: float = 60.0
    # Internal targets webhooks may reach after all (backend/webhooks/targets.py):
    # comma-separated host, host:port, ip, ip:port or CIDR. Empty: none.
    allowlist: str = ""
