"""Configuration, read once from `SIGNOFF_*` environment variables."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", extra="ignore")

    database_url: str = "sqlite:///./signoff.db"
    oidc_issuer: str = "http://localhost:9400"
    oidc_client_id: str = "signoff-console"
    # The claim holding the person's groups: an exact name, else a dotted path
    # (realm_access.roles); a list, or a string of names split by spaces/commas.
    oidc_roles_claim: str = "groups"
    # Where groups are read: the ID token, the provider's /userinfo (with the access token the
    # console sends), or auto (the ID token when it has the claim, else /userinfo).
    oidc_groups_source: Literal["auto", "id_token", "userinfo"] = "auto"
    # An unknown key id refetches the JWKS at once; such refetches at most this often (forged kids).
    oidc_refetch_seconds: float = Field(default=10.0, ge=0)
    # How long an OIDC discovery document and key set are trusted before a refetch.
    oidc_cache_seconds: int = 3600
    # Clock skew tolerated on exp/iat/nbf between the identity provider and us.
    oidc_leeway_seconds: int = 30
    reviewer_role: str = "reviewer"
    admin_role: str = "admin"
    # Security reviewers: may read the audit trail, nothing else.
    auditor_role: str = "auditor"
    # Who reads payload fields marked "x-pii" in clear, in every read (backend/catalog/pii.py).
    unmask_role: str = "admin"

    idempotency_ttl_hours: int = 24
    # Group commit: under load, how long the writer waits for more proposals to join a
    # batch before placing it (see backend/proposals/placer.py); 0 places at once, always.
    placement_linger_ms: float = Field(default=1.0, ge=0, le=50)
    default_expiry_seconds: int = 24 * 3600
    claim_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    max_wait_seconds: int = 60
    expiry_sweep_seconds: float = 5.0
    # Long-poll fallback: how often a waiter re-reads the row when no notification arrives
    # (covers several processes on one SQLite file, which have no LISTEN/NOTIFY).
    poll_fallback_seconds: float = 1.0
    # How many woken long-pollers of one process read their answer at once (the rest queue
    # in the process, not for a database connection); keep it below the pool's size.
    wait_read_concurrency: int = Field(default=8, ge=1, le=100)
    # Per agent API key: at most this many requests per window (0: no limit); see
    # backend/core/ratelimit.py.
    agent_rate_limit: int = Field(default=0, ge=0)
    agent_rate_window_seconds: int = Field(default=1, ge=1, le=3600)
    # Server limits (backend/core/server.py): request head size, time to receive a whole
    # request (slow-loris), idle keep-alive.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    request_read_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    keep_alive_seconds: int = Field(default=5, ge=1, le=600)
    api_key_days: int = 90
    log_level: str = "INFO"
    # /metrics: open when unset; otherwise callers need `Authorization: Bearer <this token>`.
    metrics_token: str | None = None
    # Bounded label cardinality: agents and action types beyond these share the label `other`.
    metrics_max_agents: int = Field(default=100, ge=1)
    metrics_max_action_types: int = Field(default=50, ge=1)

    # Keys (see docs/operations.md, "Keys"). None of them is ever stored in the database.
    # Each is given inline or as a file; when neither is set, the key is generated on first
    # use into `key_dir` (the demo's way; production sets them). The retired ones are
    # comma-separated files: still accepted when verifying, never used to sign or seal.
    key_dir: str = "signoff-keys"
    # Ed25519 (PEM): signs approval receipts and audit checkpoints.
    signing_key: str | None = None
    signing_key_file: str | None = None
    retired_signing_key_files: str = ""
    # A secret of 32+ bytes: the keyed MAC over every audit event and the chain's head.
    audit_key: str | None = None
    audit_key_file: str | None = None
    retired_audit_key_files: str = ""
    # A Fernet key: webhook signing secrets are sealed with it at rest.
    encryption_key: str | None = None
    encryption_key_file: str | None = None
    retired_encryption_key_files: str = ""
    # How long an approval receipt is good for.
    receipt_seconds: int = Field(default=24 * 3600, ge=60)
    # A signed checkpoint of the audit chain's head is written this often (0: never by the API).
    audit_checkpoint_seconds: float = Field(default=60.0, ge=0)
    # Where checkpoints are also exported (append-only): "file:/path" or an https:// URL.
    audit_sink: str = ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
