"""One proxy client and one circuit breaker per upstream service. ``GATEWAY_PROXY_CLIENT`` chooses the client
once and only that one is built: the h1 pool (``h1``, the default) or a pooled aiohttp session (``aiohttp``).

The gateway's other calls to these services, outside the proxy path (the OpenAPI merge fetching each
``/openapi.json``), go through one plain aiohttp session of their own (``CallSession``) in either mode,
opened when first used: in h1 mode the upstreams hold no aiohttp session until ``/openapi.json`` is asked
for. (The OpenAI-compatible API calls chat through the platform's shared client, not through these.)

Beside ``switchboard_shared.http_client.Downstream`` rather than on it: a proxy client must not keep
cookies (users would share them), must not decompress (bodies pass through byte for byte), must not add
its own Accept-Encoding (``forward`` sends the client's, or ``identity``), and must drop pooled connections
before the upstream's keep-alive timeout (``SWITCHBOARD_KEEP_ALIVE_SECONDS``, 30 s by default) closes them
under it.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from switchboard_gateway.proxy.h1 import H1Pool, Timeouts
from switchboard_gateway.proxy.routes import Timeout
from switchboard_gateway.settings import GatewaySettings
from switchboard_shared.http_client import watched_breaker
from switchboard_shared.registry import SERVICE_NAMES

POOL_KEEPALIVE_SECONDS = 4.0


class H1Proxy:
    """The ``h1`` proxy client of one upstream: a keep-alive pool (plain http only) and its timeouts per
    route kind, made once rather than per request."""

    def __init__(self, base_url: str, settings: GatewaySettings) -> None:
        url = URL(base_url)
        if url.scheme != "http" or url.host is None:
            raise ValueError(f"the h1 proxy client speaks plain http only, not {base_url}")
        self.pool = H1Pool(
            url.host, url.port or 80, limit=settings.upstream_pool_size, max_idle=POOL_KEEPALIVE_SECONDS
        )
        connect = settings.http_connect_timeout
        self.timeouts = {
            Timeout.DEFAULT: Timeouts(connect, settings.upstream_timeout_seconds),
            Timeout.TURN: Timeouts(connect, settings.stream_timeout_seconds),
            Timeout.LONG: Timeouts(connect, settings.upload_timeout_seconds),
        }

    async def close(self) -> None:
        self.pool.close()


class AiohttpProxy:
    """The ``aiohttp`` proxy client of one upstream: a pass-through session (no cookies, no decompression)
    and its timeouts per route kind."""

    def __init__(self, settings: GatewaySettings) -> None:
        pool_size = settings.upstream_pool_size
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=pool_size,
                limit_per_host=pool_size,
                keepalive_timeout=POOL_KEEPALIVE_SECONDS,
                ttl_dns_cache=300,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
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

    async def close(self) -> None:
        await self.session.close()


class CallSession:
    """The aiohttp session of the gateway's calls to upstreams outside the proxy path, shared by every
    upstream and opened on first use (inside the running loop). A plain client session: it may decompress
    and needs no proxy pool."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    @property
    def opened(self) -> bool:
        return self._session is not None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Upstream:
    """One upstream service on the proxy path: its circuit breaker, read timeouts and proxy client."""

    def __init__(self, name: str, base_url: str, settings: GatewaySettings, calls: CallSession) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.breaker, self.watch = watched_breaker(
            f"proxy:{name}",
            fail_max=settings.breaker_fail_max,
            reset_seconds=settings.breaker_reset_seconds,
            event="proxy_breaker_state_change",
            subject="upstream",
        )
        self.reset_seconds = settings.breaker_reset_seconds
        self.read_timeouts = {
            Timeout.DEFAULT: settings.upstream_timeout_seconds,
            Timeout.TURN: settings.stream_timeout_seconds,
            Timeout.LONG: settings.upload_timeout_seconds,
        }
        self.proxy: H1Proxy | AiohttpProxy = (
            H1Proxy(self.base_url, settings) if settings.proxy_client == "h1" else AiohttpProxy(settings)
        )
        self._calls = calls

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session for calls outside the proxy path (the OpenAPI merge); never the proxy client."""
        return self._calls.get()

    @property
    def breaker_state(self) -> str:
        return self.watch.state(self.breaker)

    async def close(self) -> None:
        await self.proxy.close()


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.calls = CallSession()
        self.by_name = {
            name: Upstream(name, getattr(settings, f"{name}_url"), settings, self.calls)
            for name in SERVICE_NAMES
            if name != "gateway"
        }

    def __getitem__(self, name: str) -> Upstream:
        return self.by_name[name]

    async def close(self) -> None:
        for upstream in self.by_name.values():
            await upstream.close()
        await self.calls.close()
