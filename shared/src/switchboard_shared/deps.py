"""FastAPI dependencies every service uses: the request's DB session and the platform resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_shared.contracts.routes import END_USER_HEADER, END_USER_VERIFIED_HEADER, TENANT_HEADER
from switchboard_shared.db import session_scope
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.platform import Platform


def get_platform(request: Request) -> Platform:
    platform: Platform = request.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_session(platform: PlatformDep) -> AsyncIterator[AsyncSession]:
    assert platform.sessionmaker is not None, "this service has no database"
    async for session in session_scope(platform.sessionmaker):
        yield session


# scope="function": commit before the response is sent, so a client that reads its 201 can read the row.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_tenant_id(tenant_id: Annotated[str | None, Header(alias=TENANT_HEADER)] = None) -> str:
    if not tenant_id or len(tenant_id) > 64:
        raise AppError(ErrorCode.BAD_REQUEST, f"The {TENANT_HEADER} header is required.")
    return tenant_id


TenantDep = Annotated[str, Depends(get_tenant_id)]


class EndUser:
    def __init__(self, user_id: str | None, verified: bool) -> None:
        self.id = user_id
        self.verified = verified and user_id is not None


def get_end_user(
    user_id: Annotated[str | None, Header(alias=END_USER_HEADER)] = None,
    verified: Annotated[str | None, Header(alias=END_USER_VERIFIED_HEADER)] = None,
) -> EndUser:
    return EndUser(user_id, verified == "1")


EndUserDep = Annotated[EndUser, Depends(get_end_user)]
