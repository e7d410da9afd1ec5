"""The FastAPI application: routers, error shape, limits, metrics and background work."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from backend import on_commit
from backend.api import admin, agents, health, keys, openapi, proposals, review
from backend.api import budgets as budget_routes
from backend.api import console as console_routes
from backend.api import eval_metrics as eval_metrics_routes
from backend.api import evals as eval_routes
from backend.api import policies as policy_routes
from backend.api import webhooks as webhook_routes
from backend.audit.checkpoints import Checkpointer
from backend.core import gc_tuning, schema
from backend.core.db import get_engine, is_sqlite
from backend.core.errors import install_error_handlers
from backend.core.keys import get_keys
from backend.core.limits import BodySizeLimit, RefuseNul
from backend.core.logging import configure_logging
from backend.core.metrics import MetricsMiddleware, metrics_endpoint
from backend.core.ratelimit import AgentRateLimit
from backend.core.settings import get_settings
from backend.observability import gauges, tracing
from backend.observability.tracing import TracingMiddleware
from backend.proposals.expiry import Sweeper
from backend.proposals.waiting import PgListener, Poller
from backend.webhooks.worker import WebhookSettings, WebhookWorker


class SchemaOutOfDate(RuntimeError):
    pass


def check_schema() -> None:
    engine = get_engine()
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"The database schema is at {current or 'nothing'} but this version needs {head}. "
            "Run 'signoff migrate' first."
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    check_schema()
    get_keys()  # a key that cannot be read stops the start, not the first approval
    interval = settings.audit_checkpoint_seconds
    checkpointer = Checkpointer(interval) if interval else None
    if checkpointer:
        checkpointer.start()
    sweeper = Sweeper(settings.expiry_sweep_seconds)
    sweeper.start()
    listener = None if is_sqlite(settings.database_url) else PgListener(settings.database_url)
    if listener:
        listener.start()
    poller = Poller(settings.poll_fallback_seconds)
    poller.start()
    webhook_settings = WebhookSettings()
    webhook_worker = WebhookWorker(webhook_settings) if webhook_settings.enabled else None
    if webhook_worker:
        webhook_worker.start()
    gc_tuning.tune()  # start-up is over: what exists now lives as long as the process
    try:
        yield
    finally:
        tracing.shutdown()
        if webhook_worker:
            webhook_worker.stop()
        sweeper.stop()
        poller.stop()
        if checkpointer:
            checkpointer.stop()
        if listener:
            listener.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    on_commit.install()
    traced = tracing.configure()  # off unless the OTEL_* variables ask (docs/observability.md)
    app = FastAPI(
        title="Signoff",
        version="0.1.0",
        description="Human approval for the actions of AI agents.",
        lifespan=lifespan,
        **tracing.fastapi_options(),
    )
    install_error_handlers(app)
    for router in (proposals.router, review.router, agents.router, admin.router, health.router, keys.router):
        app.include_router(router)
    for router in (policy_routes.router, budget_routes.router):
        app.include_router(router)
    app.include_router(webhook_routes.router)
    app.include_router(eval_routes.router)
    app.include_router(eval_metrics_routes.router)
    app.include_router(console_routes.router)
    gauges.register()
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    openapi.install(app, settings)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefuseNul)
    window = settings.agent_rate_window_seconds
    app.add_middleware(AgentRateLimit, limit=settings.agent_rate_limit, window_seconds=window)
    if traced:  # outermost: refused and rate-limited requests have their span too
        app.add_middleware(TracingMiddleware)
    return app
