"""The internal API of conversations (``/internal/v1/conversations``) and messenger inbound messages.

A customer message to a *resolved* conversation reopens it (status back to ``open``, owner ``bot``, the
transition recorded with actor ``customer``) and is answered like any other message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from switchboard_chat.conversations import repository, service
from switchboard_chat.conversations.models import OPENED_BY_INBOUND, ConversationRow
from switchboard_chat.turn.service import (
    Packet,
    TurnDeps,
    TurnHandle,
    TurnInput,
    post_operator_message,
    request_handoff,
    start_turn,
)
from switchboard_shared.contracts.chat import (
    Channel,
    Conversation,
    ConversationStatus,
    ConversationTransition,
    ConversationWithMessages,
    CreateConversation,
    Csat,
    Feedback,
    HandoffInfo,
    HeartbeatPacket,
    InboundMessage,
    Message,
    OperatorMessage,
    Owner,
    OwnerChange,
    PostMessage,
    StatusChange,
    TurnResult,
    encode_sse,
)
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.routes import WIDGET_SCOPE
from switchboard_shared.deps import EndUserDep, KeyScopeDep, PageOffset, PlatformDep, SessionDep, TenantDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses

router = APIRouter(prefix="/internal/v1", tags=["conversations"])


def get_turn_deps(request: Request) -> TurnDeps:
    deps: TurnDeps = request.state.turn_deps
    return deps


TurnDepsDep = Annotated[TurnDeps, Depends(get_turn_deps)]


def _operator_only(end_user: EndUserDep) -> None:
    if end_user.id is not None:
        raise AppError(ErrorCode.FORBIDDEN, "Only operators and services may do this.")


@router.post(
    "/conversations", status_code=201, response_model=Conversation, responses=error_responses(400, 403, 422)
)
async def create_conversation(
    body: CreateConversation,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
    scope: KeyScopeDep,
) -> Conversation:
    return await service.create(
        session=session,
        analytics=platform.analytics,
        tenant_id=tenant_id,
        body=body,
        end_user=end_user,
        scope=scope,
    )


@router.get("/conversations", response_model=Page[Conversation], responses=error_responses(400, 422))
async def list_conversations(
    session: SessionDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
    end_user_id: Annotated[str | None, Query(max_length=200)] = None,
    channel: Channel | None = None,
    status: ConversationStatus | None = None,
    owner: Owner | None = None,
    updated_after: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: PageOffset = 0,
) -> Page[Conversation]:
    items, total = await service.list_page(
        session=session,
        tenant_id=tenant_id,
        end_user=end_user,
        end_user_id=end_user_id,
        channel=channel,
        status=status,
        owner=owner,
        updated_after=updated_after,
        limit=limit,
        offset=offset,
    )
    return Page[Conversation](items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationWithMessages,
    responses=error_responses(400, 404),
)
async def get_conversation(
    conversation_id: str,
    session: SessionDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
    after: Annotated[str | None, Query(max_length=64, description="Only messages after this id")] = None,
) -> ConversationWithMessages:
    return await service.read(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user, after=after
    )


@router.get(
    "/conversations/{conversation_id}/transitions",
    response_model=list[ConversationTransition],
    responses=error_responses(400, 404),
)
async def get_transitions(
    conversation_id: str, session: SessionDep, tenant_id: TenantDep, end_user: EndUserDep
) -> list[ConversationTransition]:
    conversation = await service.get_or_404(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
    )
    return await service.transitions(session=session, conversation=conversation)


def _wants_stream(accept: str | None) -> bool:
    return accept is not None and "text/event-stream" in accept


def _sse(packet: Packet | HeartbeatPacket) -> bytes:
    return encode_sse(packet)


async def _sse_body(handle: TurnHandle, heartbeat: float) -> AsyncIterator[bytes]:
    packets = handle.packets()
    pending: asyncio.Task[Packet] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(packets.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield _sse(HeartbeatPacket())
                continue
            try:
                packet = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield _sse(packet)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending


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
    deps: TurnDepsDep,
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
        deps,
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
    if _wants_stream(accept):
        return StreamingResponse(
            _sse_body(handle, deps.settings.heartbeat_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await handle.result()


@router.post(
    "/conversations/{conversation_id}/feedback", status_code=204, responses=error_responses(400, 404, 422)
)
async def post_feedback(
    conversation_id: str,
    body: Feedback,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Response:
    conversation = await service.get_or_404(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
    )
    await service.record_feedback(
        session=session, analytics=platform.analytics, conversation=conversation, body=body
    )
    return Response(status_code=204)


@router.post(
    "/conversations/{conversation_id}/csat", status_code=204, responses=error_responses(400, 404, 422)
)
async def post_csat(
    conversation_id: str,
    body: Csat,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Response:
    conversation = await service.get_or_404(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
    )
    await service.record_csat(
        session=session, analytics=platform.analytics, conversation=conversation, body=body
    )
    return Response(status_code=204)


@router.post(
    "/conversations/{conversation_id}/handoff",
    response_model=HandoffInfo,
    responses=error_responses(400, 404, 503),
)
async def post_handoff(
    conversation_id: str, deps: TurnDepsDep, tenant_id: TenantDep, end_user: EndUserDep
) -> HandoffInfo:
    return await request_handoff(
        deps,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        end_user=end_user,
        reason="customer asked for a human",
    )


async def _load_for_operator(session: SessionDep, tenant_id: str, conversation_id: str) -> ConversationRow:
    return await service.get_or_404(session=session, tenant_id=tenant_id, conversation_id=conversation_id)


@router.put(
    "/conversations/{conversation_id}/owner",
    response_model=Conversation,
    responses=error_responses(400, 403, 404, 422),
)
async def put_owner(
    conversation_id: str,
    body: OwnerChange,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Conversation:
    _operator_only(end_user)
    conversation = await _load_for_operator(session, tenant_id, conversation_id)
    service.change_owner(
        session=session,
        analytics=platform.analytics,
        conversation=conversation,
        owner=body.owner,
        actor=body.actor,
        reason=body.reason,
    )
    await session.flush()
    return service.conversation_out(conversation)


@router.put(
    "/conversations/{conversation_id}/status",
    response_model=Conversation,
    responses=error_responses(400, 403, 404, 422),
)
async def put_status(
    conversation_id: str,
    body: StatusChange,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Conversation:
    _operator_only(end_user)
    conversation = await _load_for_operator(session, tenant_id, conversation_id)
    service.change_status(
        session=session,
        analytics=platform.analytics,
        conversation=conversation,
        status=body.status,
        actor=body.actor,
        reason=body.reason,
    )
    await session.flush()
    return service.conversation_out(conversation)


@router.post(
    "/conversations/{conversation_id}/operator-messages",
    status_code=201,
    response_model=Message,
    responses=error_responses(400, 403, 404, 409, 422),
)
async def post_operator_message_endpoint(
    conversation_id: str, body: OperatorMessage, deps: TurnDepsDep, tenant_id: TenantDep, end_user: EndUserDep
) -> Message:
    _operator_only(end_user)
    return await post_operator_message(
        deps,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        text_=body.text,
        operator_id=body.operator_id,
        idempotency_key=body.idempotency_key,
    )


@router.post("/inbound", response_model=TurnResult, responses=error_responses(400, 403, 409, 422, 503))
async def post_inbound(
    body: InboundMessage, deps: TurnDepsDep, session: SessionDep, tenant_id: TenantDep, end_user: EndUserDep
) -> TurnResult:
    """A messenger message normalised by integrations: find or open the chat's conversation, then answer."""
    _operator_only(end_user)
    conversation = await repository.find_by_external_key(
        session, tenant_id=tenant_id, channel=body.channel.value, external_key=body.external_key
    )
    if conversation is None:
        created = await service.create(
            session=session,
            analytics=deps.platform.analytics,
            tenant_id=tenant_id,
            body=CreateConversation(
                channel=body.channel,
                end_user_id=body.end_user_id,
                verified=False,
                profile=body.profile,
                external_key=body.external_key,
            ),
            end_user=end_user,
            scope=None,
            opened_by=OPENED_BY_INBOUND,
        )
        conversation_id = created.id
    else:
        conversation_id = conversation.id
    await session.commit()
    handle = await start_turn(
        deps,
        TurnInput(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            text=body.text,
            verified=False,
            client_message_id=body.idempotency_key,
        ),
    )
    return await handle.result()
