"""FastAPI dependencies every service uses: the request's DB session and the platform resources."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_shared.contracts.common import MAX_PAGE_OFFSET
from switchboard_shared.contracts.routes import (
    END_USER_CLAIMS_HEADER,
    END_USER_HEADER,
    END_USER_VERIFIED_HEADER,
    KEY_SCOPE_HEADER,
    TENANT_HEADER,
)
from switchboard_shared.db import session_scope
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.platform import Platform


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_session(platform: PlatformDep) -> AsyncIterator[AsyncSession]:
    assert platform.sessionmaker is not None, "this service has no database"
    async for session in session_scope(platform.sessionmaker):
        yield session


# scope="function": commit before the response is sent, so a client that reads its 201 can read the row.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_tenant_id(tenant_id: Annotated[str | None, Header(alias=TENANT_HEADER)] = None) -> str:
    if not tenant_id or len(tenant_id) > 64:
        raise AppError(ErrorCode.BAD_REQUEST, f"The {TENANT_HEADER} header is required.")
    return tenant_id


TenantDep = Annotated[str, Depends(get_tenant_id)]


class EndUser:
    """The end user a call is made for. ``email`` and ``crm_id`` name the customer in the CRM: they come only
    from a verified identity token's claims (the gateway's ``X-End-User-Claims``)."""

    def __init__(
        self, user_id: str | None, verified: bool, *, email: str | None = None, crm_id: str | None = None
    ) -> None:
        self.id = user_id
        self.verified = verified and user_id is not None
        self.email = email if self.verified else None
        self.crm_id = crm_id if self.verified else None


def encode_identity_claims(claims: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode("ascii")


def decode_identity_claims(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise AppError(ErrorCode.BAD_REQUEST, f"{END_USER_CLAIMS_HEADER} is malformed.") from exc
    if not isinstance(claims, dict):
        raise AppError(ErrorCode.BAD_REQUEST, f"{END_USER_CLAIMS_HEADER} is malformed.")
    return {key: value for key, value in claims.items() if isinstance(key, str) and isinstance(value, str)}


async def get_end_user(
    user_id: Annotated[str | None, Header(alias=END_USER_HEADER)] = None,
    verified: Annotated[str | None, Header(alias=END_USER_VERIFIED_HEADER)] = None,
    claims: Annotated[str | None, Header(alias=END_USER_CLAIMS_HEADER)] = None,
) -> EndUser:
    decoded = decode_identity_claims(claims)
    return EndUser(user_id, verified == "1", email=decoded.get("email"), crm_id=decoded.get("crm_id"))


EndUserDep = Annotated[EndUser, Depends(get_end_user)]


async def get_key_scope(scope: Annotated[str | None, Header(alias=KEY_SCOPE_HEADER)] = None) -> str | None:
    """The scope of the API key the gateway authenticated (widget, server, admin); None for a call from
    another service of the fleet."""
    return scope


KeyScopeDep = Annotated[str | None, Depends(get_key_scope)]


# The ``offset`` of every list route: bounded, so a huge value is a 422 and never reaches the database.
PageOffset = Annotated[
    int, Query(ge=0, le=MAX_PAGE_OFFSET, description=f"Items to skip (0-{MAX_PAGE_OFFSET})")
]
