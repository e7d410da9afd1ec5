"""The one error shape of the API, and the exception that carries it.

Services raise :class:`ApiError`; the handlers here turn it, FastAPI's validation
errors and anything unexpected into ``{"error": {type, code, message, param}}``.
"""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.core.responses import JsonResponse
from models.common import UnsafeInput

log = structlog.get_logger()

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message, self.param, self.extra)


def error_body(
    status: int, code: str, message: str, param: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {
        "type": _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
        "code": code,
        "message": message,
        "param": param,
    }
    if extra:
        err.update(extra)
    return {"error": err}


RETRY_AFTER_SECONDS = 2


def unavailable() -> JsonResponse:
    """503 ``service_unavailable`` with ``Retry-After``: the database cannot be reached."""
    body = error_body(503, "service_unavailable", "The database is unavailable; retry shortly.")
    return JsonResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "resource_missing", f"No {what} with id {ident!r}.", param="id")


def _loc_to_param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JsonResponse:
        return JsonResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UnsafeInput)
    async def _unsafe(_: Request, exc: UnsafeInput) -> JsonResponse:
        return JsonResponse(error_body(422, "invalid_value", exc.message, exc.param or None), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JsonResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return JsonResponse(
                error_body(400, "invalid_json", "The request body is not valid JSON."),
                status_code=400,
            )
        loc = tuple(first.get("loc", ()))
        param = _loc_to_param(loc)
        msg = first.get("msg", "Invalid request.")
        code = "unknown_field" if first.get("type") == "extra_forbidden" else "invalid_request"
        if code == "unknown_field":
            msg = f"Unknown field {param!r}."
        elif param:
            msg = f"{param}: {msg}"
        return JsonResponse(error_body(422, code, msg, param), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "http_error"
        )
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return JsonResponse(
            error_body(exc.status_code, code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _unavailable(request: Request, exc: Exception) -> JsonResponse:
        # The database is unreachable, out of space or its pool is exhausted: the request
        # may be retried as it is; nothing it sent was stored.
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return unavailable()

    for kind in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JsonResponse:
        log.exception("unhandled_error", path=request.url.path)
        return JsonResponse(
            error_body(500, "internal_error", "Something went wrong on our side."),
            status_code=500,
        )
