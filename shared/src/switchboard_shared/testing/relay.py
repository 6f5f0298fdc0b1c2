"""A two-route service built only from the shared library, for cross-process tests of the platform:
``/relay`` calls the configured downstream's ``/echo`` through ``Downstream``; ``/echo`` answers and logs.

Run: ``python -m switchboard_shared.testing.relay --port N`` with ``RELAY_DOWNSTREAM_URL`` set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_shared.app import build_app
from switchboard_shared.health import Readiness
from switchboard_shared.http_client import Downstream, client_config_from_settings
from switchboard_shared.serve import serve_main
from switchboard_shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class RelaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", populate_by_name=True)
    service_name: ClassVar[str] = "relay"
    downstream_url: str = Field(default="http://127.0.0.1:9", description="Where /relay sends /echo")


def create_app(settings: RelaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        downstream = Downstream("downstream", settings.downstream_url, client_config_from_settings(settings))
        readiness = Readiness()
        readiness.add_breaker("downstream", downstream)
        try:
            yield {"downstream": downstream, "readiness": readiness}
        finally:
            await downstream.close()

    app = build_app(settings, title="relay", description="cross-process test service", lifespan=lifespan)

    @app.get("/relay")
    async def relay(request: Request) -> dict[str, Any]:
        downstream: Downstream = request.state.downstream
        response = await downstream.json_request("GET", "/echo")
        return {"downstream": response, "breaker": downstream.breaker_state}

    @app.get("/echo")
    async def echo() -> dict[str, bool]:
        log.info("echo_received")
        return {"ok": True}

    return app


if __name__ == "__main__":
    serve_main(create_app, RelaySettings)
