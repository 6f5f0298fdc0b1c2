"""`GET/PUT /internal/v1/assistant`: the tenant's assistant settings; `GET .../greeting` its public part."""

from __future__ import annotations

import re

from fastapi import APIRouter

from switchboard_chat.assistant import service
from switchboard_chat.runtime import Runtime, RuntimeDep
from switchboard_shared.contracts.chat import AssistantGreeting, AssistantSettings
from switchboard_shared.deps import SessionDep, TenantDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses

router = APIRouter(prefix="/internal/v1/assistant", tags=["assistant"])


def _default_providers(runtime: Runtime) -> list[str]:
    """The service's chain for tenants without their own."""
    return list(runtime.settings.default_providers)


@router.get("", response_model=AssistantSettings, responses=error_responses(400))
async def get_assistant(runtime: RuntimeDep, session: SessionDep, tenant_id: TenantDep) -> AssistantSettings:
    settings = await service.load(session=session, tenant_id=tenant_id)
    return service.public_view(settings, _default_providers(runtime))


@router.get("/greeting", response_model=AssistantGreeting, responses=error_responses(400))
async def get_greeting(session: SessionDep, tenant_id: TenantDep) -> AssistantGreeting:
    """The assistant's name and greeting: public (the widget shows it before the first message)."""
    settings = await service.load(session=session, tenant_id=tenant_id)
    return AssistantGreeting(name=settings.name, greeting=settings.greeting)


@router.put("", response_model=AssistantSettings, responses=error_responses(400, 422))
async def put_assistant(
    runtime: RuntimeDep, body: AssistantSettings, session: SessionDep, tenant_id: TenantDep
) -> AssistantSettings:
    for rule in body.escalation.rules:
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            raise AppError(
                ErrorCode.VALIDATION_ERROR, f"Escalation rule {rule.name!r} has an invalid pattern: {exc}."
            ) from exc
    stored = await service.replace(session=session, tenant_id=tenant_id, new=body)
    return service.public_view(stored, _default_providers(runtime))
