"""One error type and one JSON error shape for every service: {"error": {code, message, request_id, details}}."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard_shared.request_context import current_request_id
from switchboard_shared.responses import JSONResponse

log = structlog.get_logger(__name__)


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    SERVICE_UNAVAILABLE = "service_unavailable"
    NOT_IMPLEMENTED = "not_implemented"
    INTERNAL_ERROR = "internal_error"


STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BUDGET_EXHAUSTED: 429,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.UPSTREAM_UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.INTERNAL_ERROR: 500,
}
CODE_BY_STATUS = {status: code for code, status in reversed(STATUS_BY_CODE.items())}


class AppError(Exception):
    """The only exception services raise for an error a client should see."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.status = status or STATUS_BY_CODE[code]


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    """The one error shape of every Switchboard service."""

    error: ErrorBody


def error_payload(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": current_request_id()}
    if details is not None:
        body["details"] = details
    return {"error": body}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_payload(code, message, details), status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for an endpoint: each status documented with the shared error shape.

    The JSON content is spelled out so that routes answering another media type (a plain-text webhook
    verification, say) still document their errors as what they are: JSON in the shared shape.
    """
    return {
        status: {
            "model": ErrorResponse,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        }
        for status in statuses
    }


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status >= 500:
        log.warning("app_error", code=exc.code, message=exc.message)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return error_response(422, ErrorCode.VALIDATION_ERROR, "The request is not valid.", details)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, ErrorCode.BAD_REQUEST)
    message = exc.detail if isinstance(exc.detail, str) else code.value.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database_unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
    return error_response(
        503, ErrorCode.SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE_MESSAGE, headers={"Retry-After": "5"}
    )


def storage_unavailable(exc: BaseException) -> bool:
    """Whether an exception means a storage backend (the database) cannot be reached right now: also used
    for exceptions raised outside the routes, in pure ASGI middleware such as the gateway's key lookup."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and _is_connection_loss(exc)


STORAGE_UNAVAILABLE_MESSAGE = "A storage backend is unavailable; try again shortly."


def _is_connection_loss(exc: DBAPIError) -> bool:
    """A driver error that means the database went away (asyncpg raises its own classes for it)."""
    if exc.connection_invalidated:
        return True
    # SQLSTATE class 08 (connection exception) and 57 (operator intervention: the server is shutting down
    # or starting up); the driver's own exception may sit under SQLAlchemy's adapter as its cause.
    if _sqlstate(exc)[:2] in ("08", "57"):
        return True
    for original in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = type(original).__name__ if original is not None else ""
        if (
            isinstance(original, ConnectionError | OSError)
            or "Connection" in name
            or "CannotConnectNow" in name
        ):
            return True
    return False


def _sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE of a PostgreSQL error, whichever layer (driver or adapter) carries it."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return ""


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if _is_connection_loss(exc):
        return await _database_unavailable(request, exc)
    if _sqlstate(exc).startswith("22"):  # class 22, data exception: NUL in text, number out of range …
        return await _unstorable_value(request, exc)
    return await _unexpected_error(request, exc)


async def _unstorable_value(_: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses (a NUL character in text, an integer beyond its range): the client's input.
    log.info("unstorable_value", error=str(getattr(exc, "orig", exc))[:200])
    return error_response(422, ErrorCode.VALIDATION_ERROR, "The request holds a value that cannot be stored.")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL_ERROR, "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(DataError, _unstorable_value)
    app.add_exception_handler(DBAPIError, _driver_error)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
