"""Errors of the OpenAI-compatible routes in OpenAI's shape: ``{"error": {message, type, param, code}}``
(plus the fleet's ``request_id``), with 400 for a request that is not valid, so OpenAI's SDKs raise their
own exception classes (``BadRequestError`` …). The rest of the fleet keeps its one error shape."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.request_context import current_request_id
from switchboard_shared.responses import JSONResponse

TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


class OpenAIRequestError(AppError):
    """A request the OpenAI-compatible API refuses (400), naming the parameter at fault."""

    def __init__(self, message: str, *, param: str | None, code: str = "invalid_value") -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)
        self.param = param
        self.openai_code = code


def error_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    return TYPE_BY_STATUS.get(status, "invalid_request_error")


def openai_error(status: int, message: str, *, code: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": error_type(status),
            "param": param,
            "code": code,
            "request_id": current_request_id(),
        }
    }


def app_error_payload(exc: AppError) -> dict[str, Any]:
    if isinstance(exc, OpenAIRequestError):
        return openai_error(exc.status, exc.message, code=exc.openai_code, param=exc.param)
    return openai_error(exc.status, exc.message, code=str(exc.code))


def param_of(loc: tuple[int | str, ...]) -> str | None:
    """``("body", "messages", 0, "role")`` → ``messages[0].role``."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def validation_payload(exc: RequestValidationError) -> dict[str, Any]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return openai_error(400, "The request body is not valid JSON.", code="invalid_json")
    param = param_of(loc)
    if kind == "missing":
        return openai_error(
            400, f"Missing required parameter: {param!r}.", code="missing_required_parameter", param=param
        )
    message = str(first.get("msg", "The request is not valid."))
    more = f" ({len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return openai_error(
        400,
        f"Invalid value for {param!r}: {message}.{more}" if param else message,
        code="invalid_value",
        param=param,
    )


class OpenAIRoute(APIRoute):
    """Renders this router's errors in OpenAI's shape; other routes keep the fleet's handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse(validation_payload(exc), status_code=400)
            except AppError as exc:
                return JSONResponse(app_error_payload(exc), status_code=exc.status, headers=exc.headers)

        return route


async def send_openai_error(send: Send, exc: AppError, headers: dict[str, str]) -> None:
    """The same shape from pure ASGI middleware (keys, limits) on these routes."""
    body = orjson.dumps(app_error_payload(exc))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
