"""``POST /v1/chat/completions`` and ``GET /v1/models``: the OpenAI-compatible face of the assistant.

Authenticated by ``GatewayMiddleware`` (server or admin keys; widget keys are refused there). Errors come
in OpenAI's shape (``openai_compat.errors``), from the middleware and from these routes alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from switchboard_gateway.auth.principal import Principal
from switchboard_gateway.openai_compat.errors import OpenAIRoute
from switchboard_gateway.openai_compat.schemas import (
    MODEL_ID,
    ChatCompletion,
    ChatCompletionRequest,
    Model,
    ModelList,
    openai_error_responses,
)
from switchboard_gateway.openai_compat.service import CompletionService
from switchboard_gateway.runtime import RuntimeDep
from switchboard_shared.contracts.chat import ChatClient
from switchboard_shared.errors import AppError, ErrorCode

router = APIRouter(
    prefix="/v1",
    tags=["openai-compatible"],
    route_class=OpenAIRoute,
    responses=openai_error_responses(401, 403, 429, 503),
)


async def get_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.key is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "An API key is required.")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@router.get("/models", summary="The models this API answers with (OpenAI format)")
async def list_models(_: PrincipalDep) -> ModelList:
    return ModelList(data=[Model(id=MODEL_ID)])


@router.get("/models/{model_id}", summary="One model (OpenAI format)", responses=openai_error_responses(404))
async def get_model(model_id: str, _: PrincipalDep) -> Model:
    if model_id != MODEL_ID:
        raise AppError(ErrorCode.NOT_FOUND, f"Model {model_id!r} not found; use {MODEL_ID!r}.")
    return Model(id=MODEL_ID)


@router.post(
    "/chat/completions",
    summary="Chat completion from the tenant's support assistant (OpenAI format, streaming or not)",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}, **openai_error_responses(400, 404, 502, 504)},
)
async def chat_completions(
    body: ChatCompletionRequest, principal: PrincipalDep, runtime: RuntimeDep
) -> ChatCompletion | StreamingResponse:
    assert runtime.platform.sessionmaker is not None
    service = CompletionService(
        chat=ChatClient(runtime.platform.downstream("chat")),
        limits=runtime.limits,
        principal=principal,
        turn_timeout=runtime.settings.stream_timeout_seconds,
    )
    if not body.stream:
        return await service.complete(body)
    chunks = await service.open_stream(body)
    return StreamingResponse(
        chunks,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
