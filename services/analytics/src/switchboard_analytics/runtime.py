"""The analytics service's pooled resources, opened once by the lifespan and read by endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_analytics.posthog_export.service import PostHogExporter
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.platform import Platform


@dataclass
class Runtime:
    settings: AnalyticsSettings
    platform: Platform
    posthog: PostHogExporter | None = None

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        assert self.platform.sessionmaker is not None
        return self.platform.sessionmaker


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
