"""The routes that take a message into a conversation (``/internal/v1``): a customer's message (answered
as a result or a stream), a messenger's inbound message, an operator's reply, and a request for a human."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from switchboard_chat.conversations import service as conversations
from switchboard_chat.runtime import RuntimeDep
from switchboard_chat.turn.handoff import request_handoff
from switchboard_chat.turn.intake import TurnInput
from switchboard_chat.turn.service import start_turn
from switchboard_chat.turn.stream import sse_body, wants_stream
from switchboard_shared.contracts.chat import (
    HandoffInfo,
    InboundMessage,
    Message,
    OperatorMessage,
    PostMessage,
    TurnResult,
)
from switchboard_shared.contracts.routes import WIDGET_SCOPE
from switchboard_shared.deps import EndUserDep, KeyScopeDep, SessionDep, TenantDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses

router = APIRouter(prefix="/internal/v1", tags=["conversations"])


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=TurnResult,
    responses={
        **error_responses(400, 403, 404, 409, 422, 503),
        200: {"content": {"text/event-stream": {}}, "description": "TurnResult, or SSE of StreamPacket"},
    },
)
async def post_message(
    conversation_id: str,
    body: PostMessage,
    runtime: RuntimeDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
    scope: KeyScopeDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response | TurnResult:
    if body.history and scope == WIDGET_SCOPE:
        raise AppError(
            ErrorCode.FORBIDDEN,
            "Earlier turns (history) are for server keys; a widget's conversation keeps its own.",
        )
    handle = await start_turn(
        runtime,
        TurnInput(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            text=body.text,
            end_user=end_user,
            verified=body.verified,
            client_message_id=body.client_message_id,
            providers=body.providers,
            history=body.history,
            scope=scope,
        ),
    )
    if wants_stream(accept):
        return StreamingResponse(
            sse_body(handle, runtime.settings.heartbeat_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await handle.result()


@router.post(
    "/conversations/{conversation_id}/handoff",
    response_model=HandoffInfo,
    responses=error_responses(400, 404, 503),
)
async def post_handoff(
    conversation_id: str, runtime: RuntimeDep, tenant_id: TenantDep, end_user: EndUserDep
) -> HandoffInfo:
    return await request_handoff(
        runtime,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        end_user=end_user,
        reason="customer asked for a human",
    )


@router.post(
    "/conversations/{conversation_id}/operator-messages",
    status_code=201,
    response_model=Message,
    responses=error_responses(400, 403, 404, 409, 422),
)
async def post_operator_message(
    conversation_id: str,
    body: OperatorMessage,
    runtime: RuntimeDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Message:
    conversations.require_operator(end_user)
    return await conversations.post_operator_message(
        runtime=runtime, tenant_id=tenant_id, conversation_id=conversation_id, body=body
    )


@router.post("/inbound", response_model=TurnResult, responses=error_responses(400, 403, 409, 422, 503))
async def post_inbound(
    body: InboundMessage, runtime: RuntimeDep, session: SessionDep, tenant_id: TenantDep, end_user: EndUserDep
) -> TurnResult:
    """A messenger message normalised by integrations: find or open the chat's conversation, then answer."""
    conversations.require_operator(end_user)
    conversation_id = await conversations.open_inbound(
        session=session,
        analytics=runtime.platform.analytics,
        tenant_id=tenant_id,
        body=body,
        end_user=end_user,
    )
    await session.commit()
    handle = await start_turn(
        runtime,
        TurnInput(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            text=body.text,
            verified=False,
            client_message_id=body.idempotency_key,
        ),
    )
    return await handle.result()
