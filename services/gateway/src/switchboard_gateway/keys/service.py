"""API key logic: create (the key is returned once), list, revoke."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.keys import repository
from switchboard_gateway.keys.models import ApiKeyRow
from switchboard_gateway.keys.schemas import KeyCreate
from switchboard_gateway.keys.secrets import KeyScope, display_prefix, generate_key, hash_key
from switchboard_gateway.tenants import service as tenants
from switchboard_shared.errors import AppError, ErrorCode


async def create(session: AsyncSession, *, tenant_id: str, data: KeyCreate) -> tuple[ApiKeyRow, str]:
    await tenants.get_or_404(session, tenant_id=tenant_id)
    if data.scope == KeyScope.WIDGET and not data.allowed_origins:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, "A widget key needs at least one allowed origin (allowed_origins)."
        )
    if data.scope != KeyScope.WIDGET and data.allowed_origins:
        raise AppError(ErrorCode.VALIDATION_ERROR, "Only widget keys are origin-locked.")
    secret = generate_key(data.scope)
    key = ApiKeyRow(
        id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        scope=data.scope.value,
        name=data.name,
        display_prefix=display_prefix(secret),
        key_hash=hash_key(secret),
        allowed_origins=list(data.allowed_origins),
        requests_per_minute=data.requests_per_minute,
        created_at=datetime.now(UTC),
        expires_at=data.expires_at,
        revoked_at=None,
    )
    return await repository.add(session, key), secret


async def revoke(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKeyRow:
    key = await repository.get(session, tenant_id=tenant_id, key_id=key_id)
    if key is None:
        raise AppError(ErrorCode.NOT_FOUND, f"Key {key_id!r} not found.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
    return key
