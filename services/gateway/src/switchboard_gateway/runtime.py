"""The gateway's pooled resources (``Runtime``), opened once by the lifespan and read by middleware and
endpoints through ``RuntimeDep``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from switchboard_gateway.auth.principal import KeyResolver
from switchboard_gateway.limits.service import Limits
from switchboard_gateway.settings import GatewaySettings
from switchboard_shared.platform import Platform

if TYPE_CHECKING:
    from switchboard_gateway.openapi import OpenAPIAggregator
    from switchboard_gateway.proxy.upstreams import Upstreams


@dataclass
class Runtime:
    settings: GatewaySettings
    platform: Platform
    resolver: KeyResolver
    limits: Limits
    upstreams: Upstreams
    openapi: OpenAPIAggregator


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
