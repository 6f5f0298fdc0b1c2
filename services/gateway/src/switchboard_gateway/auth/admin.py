"""Dependencies of the admin API: the fleet operator token or an ``ak_`` admin key of one tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from switchboard_gateway.auth.principal import Principal, presented_credential
from switchboard_gateway.keys.secrets import KeyScope
from switchboard_gateway.runtime import RuntimeDep
from switchboard_shared.errors import AppError, ErrorCode


async def get_admin(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    principal = await runtime.resolver.resolve(presented_credential(authorization, x_api_key))
    if principal.key is not None:
        if principal.key.scope != KeyScope.ADMIN:
            raise AppError(
                ErrorCode.FORBIDDEN, "The admin API needs an admin key (ak_) or the operator token."
            )
        await runtime.limits.check_request(principal.key, None)
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]


async def get_operator(principal: AdminDep) -> Principal:
    if not principal.is_operator:
        raise AppError(ErrorCode.FORBIDDEN, "Only the fleet operator token may do this.")
    return principal


OperatorDep = Annotated[Principal, Depends(get_operator)]


def ensure_tenant_access(principal: Principal, tenant_id: str) -> None:
    """An admin key sees only its own tenant; another tenant's id looks like a tenant that does not exist."""
    if not principal.is_operator and principal.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Tenant {tenant_id!r} not found.")
