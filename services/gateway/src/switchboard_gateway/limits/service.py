"""Rate limits (the platform's rate limiter: in-process or Redis) and daily budgets (cache counters).

A store outage fails open: limits protect the fleet, losing them for a while loses no data, and refusing
every request because Redis blinked would be worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from switchboard_gateway.auth.principal import KeyRecord
from switchboard_gateway.keys.secrets import KeyScope
from switchboard_gateway.settings import GatewaySettings
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.stores import Stores
from switchboard_shared.stores.base import StoreUnavailable

log = structlog.get_logger(__name__)
BUDGET_TTL_SECONDS = 2 * 86_400


@dataclass(frozen=True, slots=True)
class Usage:
    day: str
    messages: int
    tokens: int
    message_budget: int
    token_budget: int


def _day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d")


def seconds_until_utc_midnight(now: datetime | None = None) -> int:
    current = now or datetime.now(UTC)
    tomorrow = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - current).total_seconds()))


class Limits:
    def __init__(self, settings: GatewaySettings, stores: Stores) -> None:
        self.settings = settings
        self.stores = stores
        self.key_defaults = {
            KeyScope.WIDGET: settings.widget_key_requests_per_minute,
            KeyScope.SERVER: settings.server_key_requests_per_minute,
            KeyScope.ADMIN: settings.admin_key_requests_per_minute,
        }

    async def _hit(self, bucket: str, limit: int, what: str) -> None:
        if limit <= 0:
            return
        try:
            result = await self.stores.rate_limiter.hit(bucket, limit=limit, period_seconds=60)
        except StoreUnavailable as exc:
            log.warning("rate_limit_store_unavailable", error=str(exc)[:200])
            return
        if not result.allowed:
            retry_after = str(max(1, math.ceil(result.retry_after)))
            raise AppError(
                ErrorCode.RATE_LIMITED,
                f"Too many requests for this {what}; retry after {retry_after} s.",
                headers={
                    "Retry-After": retry_after,
                    "X-RateLimit-Limit": str(result.limit),
                    "X-RateLimit-Remaining": "0",
                },
            )

    async def check_request(self, key: KeyRecord, end_user_id: str | None) -> None:
        """None takes the default; 0 is a real value that disables the limit (as the admin API documents)."""
        key_limit = key.requests_per_minute
        await self._hit(
            f"gw:key:{key.key_id}",
            self.key_defaults[key.scope] if key_limit is None else key_limit,
            "API key",
        )
        if end_user_id:
            user_limit = key.end_user_requests_per_minute
            limit = self.settings.end_user_requests_per_minute if user_limit is None else user_limit
            await self._hit(f"gw:user:{key.tenant_id}:{end_user_id}", limit, "end user")

    async def check_anonymous(self, key: KeyRecord, address: str | None) -> None:
        """Anonymous widget traffic from one address: whatever ``X-Anonymous-ID`` each request brings."""
        if address:
            await self._hit(
                f"gw:anon:{key.key_id}:{address}",
                self.settings.anonymous_requests_per_minute_per_address,
                "address (anonymous visitors)",
            )

    def _budgets(self, key: KeyRecord) -> tuple[int, int]:
        messages = key.daily_message_budget
        tokens = key.daily_token_budget
        return (
            self.settings.daily_message_budget if messages is None else messages,
            self.settings.daily_token_budget if tokens is None else tokens,
        )

    async def usage(self, tenant_id: str, key: KeyRecord | None = None) -> Usage:
        day = _day()
        try:
            messages = await self.stores.cache.get(f"gw:budget:{tenant_id}:{day}:messages")
            tokens = await self.stores.cache.get(f"gw:budget:{tenant_id}:{day}:tokens")
        except StoreUnavailable:
            messages = tokens = None
        message_budget, token_budget = (
            self._budgets(key)
            if key
            else (self.settings.daily_message_budget, self.settings.daily_token_budget)
        )
        return Usage(day, int(messages or 0), int(tokens or 0), message_budget, token_budget)

    async def spend_message(self, key: KeyRecord) -> None:
        """Count one message against today's budget, refusing it when the budget is spent."""
        message_budget, token_budget = self._budgets(key)
        day = _day()
        prefix = f"gw:budget:{key.tenant_id}:{day}"
        try:
            tokens = int(await self.stores.cache.get(f"{prefix}:tokens") or 0)
            if token_budget >= 0 and tokens >= token_budget:
                self._exhausted("token")
            messages = await self.stores.cache.incr(f"{prefix}:messages", ttl=BUDGET_TTL_SECONDS)
        except StoreUnavailable as exc:
            log.warning("budget_store_unavailable", error=str(exc)[:200])
            return
        if message_budget >= 0 and messages > message_budget:
            self._exhausted("message")

    async def spend_tokens(self, tenant_id: str, tokens: int) -> None:
        if tokens <= 0:
            return
        try:
            await self.stores.cache.incr(
                f"gw:budget:{tenant_id}:{_day()}:tokens", tokens, ttl=BUDGET_TTL_SECONDS
            )
        except StoreUnavailable as exc:
            log.warning("budget_store_unavailable", error=str(exc)[:200])

    @staticmethod
    def _exhausted(what: str) -> None:
        retry_after = seconds_until_utc_midnight()
        raise AppError(
            ErrorCode.BUDGET_EXHAUSTED,
            f"The tenant's daily {what} budget is spent; it resets at 00:00 UTC.",
            headers={"Retry-After": str(retry_after)},
        )
