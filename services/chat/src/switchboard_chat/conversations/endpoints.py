"""The internal API of conversations (``/internal/v1/conversations``): open, read, list, transitions,
feedback, CSAT, and an operator's owner or status change. The routes that bring a message into a
conversation (and so run a turn) are in ``turn/endpoints.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from switchboard_chat.conversations import service, suggestions
from switchboard_chat.runtime import RuntimeDep
from switchboard_shared.contracts.chat import (
    Channel,
    Conversation,
    ConversationStatus,
    ConversationTransition,
    ConversationWithMessages,
    CreateConversation,
    Csat,
    Feedback,
    Owner,
    OwnerChange,
    StatusChange,
)
from switchboard_shared.contracts.common import Page
from switchboard_shared.deps import EndUserDep, KeyScopeDep, PageOffset, PlatformDep, SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1", tags=["conversations"])


@router.post(
    "/conversations",
    status_code=201,
    response_model=Conversation,
    responses={
        200: {"model": Conversation, "description": "Resumed (resume): the conversation kept for the key"},
        **error_responses(400, 403, 422),
    },
)
async def create_conversation(
    body: CreateConversation,
    response: Response,
    session: SessionDep,
    platform: PlatformDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
    scope: KeyScopeDep,
) -> Conversation:
    conversation, resumed = await service.open_or_resume(
        session=session,
        analytics=platform.analytics,
        tenant_id=tenant_id,
        body=body,
        end_user=end_user,
        scope=scope,
    )
    if resumed:
        response.status_code = 200
    return conversation


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
    service.require_operator(end_user)
    conversation, _ = await service.transition(
        session=session,
        analytics=platform.analytics,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        change=body,
    )
    return conversation


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
    runtime: RuntimeDep,
    tenant_id: TenantDep,
    end_user: EndUserDep,
) -> Conversation:
    service.require_operator(end_user)
    conversation, changed = await service.transition(
        session=session,
        analytics=platform.analytics,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        change=body,
    )
    if changed and body.status is ConversationStatus.RESOLVED:
        # What operators answered in it becomes suggested curated answers: sent now in the background, and
        # from the outbox later if retrieval cannot take them now.
        await session.commit()
        suggestions.send_later(runtime, conversation_id=conversation_id)
    return conversation
