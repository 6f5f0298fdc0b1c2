"""The caller of a request: the fleet operator (admin token) or an API key of one tenant, with the
key's tenant settings; looked up by hash and cached briefly in-process."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_gateway.keys import repository as keys_repository
from switchboard_gateway.keys.secrets import KeyScope, hash_key, looks_like_key
from switchboard_shared.errors import AppError, ErrorCode

MAX_CACHED_KEYS = 50_000


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    tenant_id: str
    scope: KeyScope
    allowed_origins: tuple[str, ...]
    requests_per_minute: int | None
    tenant_disabled: bool
    identity_secret: str
    daily_message_budget: int | None
    daily_token_budget: int | None
    end_user_requests_per_minute: int | None
    # Unix time the key stops working (None: never); checked on every use, cached or not.
    expires_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at


@dataclass(slots=True)
class Principal:
    """``key`` is None only for the fleet operator."""

    key: KeyRecord | None
    end_user_id: str | None = None
    end_user_verified: bool = False
    # The verified identity token's CRM claims (email, crm_id): who the customer is in the tenant's CRM.
    end_user_claims: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_operator(self) -> bool:
        return self.key is None

    @property
    def tenant_id(self) -> str | None:
        return self.key.tenant_id if self.key else None

    @property
    def scope(self) -> str:
        return self.key.scope if self.key else "operator"


def presented_credential(authorization: str | None, api_key: str | None) -> str | None:
    if api_key:
        return api_key.strip()
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


class KeyResolver:
    """Resolves a presented credential to a Principal; positive and negative lookups are cached."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        admin_token: str,
        ttl_seconds: float,
        negative_ttl_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.admin_token = admin_token.encode()
        self.ttl = ttl_seconds
        self.negative_ttl = negative_ttl_seconds
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._pending: dict[str, asyncio.Future[KeyRecord | None]] = {}

    def is_operator_token(self, credential: str) -> bool:
        return hmac.compare_digest(credential.encode(), self.admin_token)

    async def resolve(self, credential: str | None) -> Principal:
        if not credential:
            raise AppError(
                ErrorCode.UNAUTHORIZED,
                "An API key is required (Authorization: Bearer <key> or X-API-Key).",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not looks_like_key(credential):
            if self.is_operator_token(credential):
                return Principal(key=None)
            raise AppError(ErrorCode.UNAUTHORIZED, "The API key is not valid.")
        record = await self.lookup(credential)
        if record is not None and record.expired():
            record = None
        if record is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "The API key is not valid or was revoked.")
        if record.tenant_disabled:
            raise AppError(ErrorCode.FORBIDDEN, "This tenant is disabled (kill switch).")
        return Principal(key=record)

    async def lookup(self, key: str) -> KeyRecord | None:
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # One database lookup per key at a time: when a hot key's entry expires, the requests that
        # arrive meanwhile wait for that lookup instead of each querying the database.
        pending = self._pending.get(digest)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request itself was cancelled
                return await self.lookup(key)  # the leading lookup was: lead a new one
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            record = await self._load(digest)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as unhandled
            raise
        finally:
            self._pending.pop(digest, None)
        future.set_result(record)
        return record

    async def _load(self, digest: str) -> KeyRecord | None:
        now = time.monotonic()
        async with self.sessionmaker() as session:
            row = await keys_repository.find_active_by_hash(session, key_hash=digest, now=datetime.now(UTC))
        record = None
        if row is not None:
            api_key, tenant = row
            record = KeyRecord(
                key_id=api_key.id,
                tenant_id=api_key.tenant_id,
                scope=KeyScope(api_key.scope),
                allowed_origins=tuple(api_key.allowed_origins or ()),
                requests_per_minute=api_key.requests_per_minute,
                tenant_disabled=tenant.disabled,
                identity_secret=tenant.identity_secret,
                daily_message_budget=tenant.daily_message_budget,
                daily_token_budget=tenant.daily_token_budget,
                end_user_requests_per_minute=tenant.end_user_requests_per_minute,
                expires_at=_timestamp(api_key.expires_at),
            )
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[digest] = (now + (self.ttl if record else self.negative_ttl), record)
        return record

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop this replica's cached keys of a tenant (after a revoke or a settings change)."""
        for digest, (_, record) in list(self._cache.items()):
            if record is not None and record.tenant_id == tenant_id:
                self._cache.pop(digest, None)


def _timestamp(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    # SQLite gives naive datetimes back; the gateway stores UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
