"""/healthz (alive), /readyz (own dependencies and downstream breakers) and Prometheus /metrics."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.responses import JSONResponse

Check = Callable[[], Awaitable[Any]]


class HasBreaker(Protocol):
    """A client behind a circuit breaker: ``closed``, ``open`` or ``half-open``."""

    @property
    def breaker_state(self) -> str: ...


@dataclass
class Readiness:
    """Named dependency checks (a failing one makes the service unready) and informational breakers."""

    checks: dict[str, Check] = field(default_factory=dict)
    breakers: dict[str, HasBreaker] = field(default_factory=dict)
    timeout: float = 2.0

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def add_breaker(self, name: str, client: HasBreaker) -> None:
        self.breakers[name] = client

    async def _run(self, check: Check) -> dict[str, Any]:
        try:
            detail = await asyncio.wait_for(check(), timeout=self.timeout)
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return {"ok": True, **({"detail": detail} if detail is not None else {})}

    async def report(self) -> tuple[bool, dict[str, Any]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        ready = all(result["ok"] for result in results)
        breakers = {name: client.breaker_state for name, client in self.breakers.items()}
        return ready, {"status": "ready" if ready else "unavailable", "checks": checks, "breakers": breakers}


def health_router(*, metrics_tokens: Sequence[str] = ()) -> APIRouter:
    """``metrics_tokens``: when given, ``/metrics`` answers only ``Authorization: Bearer <one of them>`` (a
    service whose port is public); otherwise it is open to whoever reaches the port."""
    router = APIRouter(tags=["health"])
    tokens = [token.encode() for token in metrics_tokens if token]

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: own dependencies reachable; breaker states")
    async def readyz(request: Request) -> JSONResponse:
        readiness: Readiness = request.state.readiness
        ready, body = await readiness.report()
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        if tokens:
            presented = (authorization or "").removeprefix("Bearer ").strip().encode()
            if not any(hmac.compare_digest(presented, token) for token in tokens):
                raise AppError(
                    ErrorCode.UNAUTHORIZED,
                    "Metrics need the metrics token (Authorization: Bearer <token>).",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
