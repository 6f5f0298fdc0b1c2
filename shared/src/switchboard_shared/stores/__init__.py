"""Async stores behind small interfaces, each with an in-process and a Redis implementation."""

from switchboard_shared.stores.base import (
    Cache,
    IdempotencyStore,
    Lock,
    LockStore,
    LockTimeout,
    RateLimiter,
    RateLimitResult,
    StoreUnavailable,
)
from switchboard_shared.stores.factory import Stores, create_stores

__all__ = [
    "Cache",
    "IdempotencyStore",
    "Lock",
    "LockStore",
    "LockTimeout",
    "RateLimitResult",
    "RateLimiter",
    "StoreUnavailable",
    "Stores",
    "create_stores",
]
