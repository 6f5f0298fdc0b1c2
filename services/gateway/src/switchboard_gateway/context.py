"""The gateway's pooled resources, opened once by the lifespan and read by middleware and endpoints."""

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
class Gateway:
    settings: GatewaySettings
    platform: Platform
    resolver: KeyResolver
    limits: Limits
    upstreams: Upstreams
    openapi: OpenAPIAggregator


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
