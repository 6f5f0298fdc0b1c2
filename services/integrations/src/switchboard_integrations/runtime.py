"""What the integrations lifespan owns beyond the shared platform: one HTTP client per external system
(each with its own breaker), the chat client, and short DB transactions that never span a slow call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_integrations.settings import IntegrationsSettings
from switchboard_shared.contracts.chat import ChatClient
from switchboard_shared.http_client import ClientConfig, Downstream, client_config_from_settings
from switchboard_shared.platform import Platform
from switchboard_shared.url_guard import AddressGuard, allowlist_with


@dataclass
class DownstreamPool:
    """Downstreams created on first use, keyed by name (``crm:<connector id>``, ``telegram`` …).

    A connector whose base URL or timeout changes gets a fresh client; the old one is closed at shutdown.
    """

    settings: IntegrationsSettings
    platform: Platform
    clients: dict[str, tuple[tuple[str, float], Downstream]] = field(default_factory=dict)
    retired: list[Downstream] = field(default_factory=list)

    @cached_property
    def guard(self) -> AddressGuard:
        """The address guard of tenant-chosen base URLs: the allow-list plus the demo CRM's address."""
        return AddressGuard(allowlist_with(self.settings.url_allowlist, self.settings.demo_crm_url))

    def get(
        self, name: str, base_url: str, *, read_timeout: float | None = None, guarded: bool = False
    ) -> Downstream:
        """``guarded``: the base URL is a tenant's choice and every call passes the address guard."""
        timeout = read_timeout or self.settings.connector_timeout
        signature = (base_url.rstrip("/"), timeout)
        existing = self.clients.get(name)
        if existing is not None and existing[0] == signature:
            return existing[1]
        if existing is not None:
            self.retired.append(existing[1])
        config: ClientConfig = client_config_from_settings(self.settings, read_timeout=timeout)
        client = Downstream(name, base_url, config, guard=self.guard if guarded else None)
        self.clients[name] = (signature, client)
        self.platform.readiness.add_breaker(name, client)
        return client

    async def close(self) -> None:
        for _, client in self.clients.values():
            await client.close()
        for client in self.retired:
            await client.close()
        self.clients.clear()
        self.retired.clear()


@dataclass
class ConfigCache:
    """Connector configs and channel bindings read on every call, kept in-process for a few seconds.

    Changes made through this replica clear it at once; other replicas see them within ``ttl``.
    """

    ttl: float
    entries: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)

    def get(self, key: tuple[str, ...]) -> tuple[bool, Any]:
        entry = self.entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: tuple[str, ...], value: Any) -> None:
        if self.ttl > 0:
            self.entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class Runtime:
    settings: IntegrationsSettings
    platform: Platform
    pool: DownstreamPool
    chat: ChatClient
    configs: ConfigCache = field(default_factory=lambda: ConfigCache(ttl=5.0))

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        assert self.platform.sessionmaker is not None
        return self.platform.sessionmaker

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One short transaction: committed on exit, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
