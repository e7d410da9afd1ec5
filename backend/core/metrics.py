"""Prometheus metrics and the middleware that counts requests."""

import hmac
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core.errors import ApiError
from backend.core.responses import StatusRecorder
from backend.core.settings import get_settings

REQUESTS = Counter("signoff_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "signoff_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = StatusRecorder(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], path, str(sent.status or 500)).inc()
            LATENCY.labels(scope["method"], path).observe(time.perf_counter() - start)


def metrics_endpoint(request: Request) -> Response:
    """Prometheus' scrape. Open unless ``SIGNOFF_METRICS_TOKEN`` is set; then the scraper
    sends it as a bearer token (Prometheus' ``authorization`` scrape setting)."""
    token = get_settings().metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(
                401,
                "metrics_token_required",
                "Send the metrics token as a bearer token.",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
