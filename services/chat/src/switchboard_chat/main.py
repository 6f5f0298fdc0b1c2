"""Builds the chat service app: ``create_app(settings)`` with a lifespan that owns every pooled resource."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from switchboard_chat.assistant.endpoints import router as assistant_router
from switchboard_chat.conversations import suggestions
from switchboard_chat.conversations.endpoints import router as conversations_router
from switchboard_chat.conversations.window import RecentWindow
from switchboard_chat.providers.registry import ProviderRegistry
from switchboard_chat.runtime import Runtime
from switchboard_chat.settings import ChatSettings
from switchboard_chat.turn.endpoints import router as turn_router
from switchboard_shared.app import build_app
from switchboard_shared.platform import open_platform


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_platform(
            settings,
            migrations_package="switchboard_chat",
            downstreams=["retrieval", "integrations", "analytics"],
            auto_migrate=settings.auto_migrate,
        ) as platform:
            registry = ProviderRegistry(settings)
            runtime = Runtime(
                settings=settings,
                platform=platform,
                registry=registry,
                window=RecentWindow(
                    platform.stores.cache, size=settings.history_window, ttl=settings.window_cache_ttl_seconds
                ),
            )
            outbox = asyncio.create_task(suggestions.run_outbox(runtime), name="suggestion-outbox")
            try:
                yield {"platform": platform, "readiness": platform.readiness, "runtime": runtime}
            finally:
                outbox.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await outbox
                # Turns already running finish (their answers are stored) before the pools close.
                if runtime.tasks:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            asyncio.gather(*runtime.tasks, return_exceptions=True), timeout=30
                        )
                await registry.close()

    app = build_app(
        settings,
        title="Switchboard chat",
        description="Conversations, the RAG turn, LLM providers, tools and handoff state.",
        lifespan=lifespan,
    )
    app.include_router(conversations_router)
    app.include_router(turn_router)
    app.include_router(assistant_router)
    return app
