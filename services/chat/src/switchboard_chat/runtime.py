"""What the chat service keeps for its lifetime: settings, the platform (DB, stores, downstreams, analytics),
the provider registry, the recent-window cache and the turns still running."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_chat.conversations.lock import ConversationLock
from switchboard_chat.conversations.window import RecentWindow
from switchboard_chat.providers.registry import ProviderRegistry
from switchboard_chat.settings import ChatSettings
from switchboard_shared.contracts.retrieval import RetrievalClient
from switchboard_shared.platform import Platform


@dataclass
class Runtime:
    settings: ChatSettings
    platform: Platform
    registry: ProviderRegistry
    window: RecentWindow
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        assert self.platform.sessionmaker is not None
        return self.platform.sessionmaker

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``work`` in the background; shutdown waits for it (like for a running turn)."""
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def retrieval(self) -> RetrievalClient:
        """Retrieval's typed client on this process's shared downstream connection."""
        return RetrievalClient(
            self.platform.downstream("retrieval"), timeout=self.settings.retrieval_timeout_seconds
        )

    def lock(self, conversation_id: str) -> ConversationLock:
        """The conversation's lock (not yet taken): ``async with runtime.lock(id):``."""
        return ConversationLock(
            self.platform.stores.locks,
            conversation_id,
            ttl=self.settings.lock_ttl_seconds,
            wait=self.settings.lock_wait_seconds,
        )


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
