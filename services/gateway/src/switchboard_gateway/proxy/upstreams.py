"""One connection pool and one circuit breaker per upstream service, for the proxy path: the h1 pool
(``GATEWAY_PROXY_CLIENT=h1``, the default) or a pooled aiohttp session (``aiohttp``). In h1 mode the aiohttp
session is opened only if something outside the proxy path asks for it (the aggregated OpenAPI document).

Beside ``switchboard_shared.http_client.Downstream`` rather than on it: a proxy session must not keep
cookies (users would share them), must not decompress (bodies pass through byte for byte), must not add
its own Accept-Encoding (``forward`` sends the client's, or ``identity``), and must drop pooled connections before the upstream's
keep-alive timeout (``SWITCHBOARD_KEEP_ALIVE_SECONDS``, 30 s by default) closes them under it.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import structlog
from aiobreaker import CircuitBreaker, CircuitBreakerListener
from aiobreaker.state import CircuitBreakerBaseState, CircuitBreakerState
from yarl import URL

from switchboard_gateway.proxy.h1 import H1Pool
from switchboard_gateway.proxy.routes import Timeout
from switchboard_gateway.settings import GatewaySettings
from switchboard_shared.metrics import BREAKER_STATE
from switchboard_shared.registry import SERVICE_NAMES

log = structlog.get_logger(__name__)
GAUGE = {CircuitBreakerState.CLOSED: 0, CircuitBreakerState.HALF_OPEN: 1, CircuitBreakerState.OPEN: 2}
POOL_KEEPALIVE_SECONDS = 4.0


class _BreakerLog(CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self.name = name

    def state_change(
        self, _breaker: CircuitBreaker, _old: CircuitBreakerBaseState | None, new: CircuitBreakerBaseState
    ) -> None:
        BREAKER_STATE.labels(self.name).set(GAUGE[new.state])
        log.warning("proxy_breaker_state_change", upstream=self.name, state=new.state.name.lower())


class Upstream:
    def __init__(self, name: str, base_url: str, settings: GatewaySettings) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.pool_size = settings.upstream_pool_size
        self._session: aiohttp.ClientSession | None = None
        self.breaker = CircuitBreaker(
            fail_max=settings.breaker_fail_max,
            timeout_duration=timedelta(seconds=settings.breaker_reset_seconds),
            listeners=[_BreakerLog(f"proxy:{name}")],
            name=f"proxy:{name}",
        )
        connect = settings.http_connect_timeout
        self.timeouts = {
            Timeout.DEFAULT: aiohttp.ClientTimeout(
                total=None, connect=connect, sock_read=settings.upstream_timeout_seconds
            ),
            Timeout.TURN: aiohttp.ClientTimeout(
                total=None, connect=connect, sock_read=settings.stream_timeout_seconds
            ),
            Timeout.LONG: aiohttp.ClientTimeout(
                total=None, connect=connect, sock_read=settings.upload_timeout_seconds
            ),
        }
        self.reset_seconds = settings.breaker_reset_seconds
        self.connect_timeout = connect
        self.read_timeouts = {
            Timeout.DEFAULT: settings.upstream_timeout_seconds,
            Timeout.TURN: settings.stream_timeout_seconds,
            Timeout.LONG: settings.upload_timeout_seconds,
        }
        self.pool: H1Pool | None = None
        if settings.proxy_client == "h1":
            url = URL(self.base_url)
            if url.scheme != "http" or url.host is None:
                raise ValueError(f"the h1 proxy client speaks plain http only, not {self.base_url}")
            self.pool = H1Pool(
                url.host,
                url.port or 80,
                limit=settings.upstream_pool_size,
                max_idle=POOL_KEEPALIVE_SECONDS,
            )

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled aiohttp session, opened on first use (inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.pool_size,
                    limit_per_host=self.pool_size,
                    keepalive_timeout=POOL_KEEPALIVE_SECONDS,
                    ttl_dns_cache=300,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return self._session

    @property
    def breaker_state(self) -> str:
        state: str = self.breaker.current_state.name.lower().replace("_", "-")
        if state == "open" and self.breaker.time_until_open <= timedelta(0):
            return "half-open"
        return state

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self._session is not None:
            await self._session.close()


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.by_name = {
            name: Upstream(name, getattr(settings, f"{name}_url"), settings)
            for name in SERVICE_NAMES
            if name != "gateway"
        }

    def __getitem__(self, name: str) -> Upstream:
        return self.by_name[name]

    async def close(self) -> None:
        for upstream in self.by_name.values():
            await upstream.close()
