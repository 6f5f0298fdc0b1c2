"""Outbound HTTP to other services and SaaS APIs: one pooled aiohttp session per downstream,
explicit timeouts, jittered retries for idempotent calls only, and a circuit breaker per downstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
import structlog
from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerListener
from aiobreaker.state import CircuitBreakerBaseState, CircuitBreakerState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.metrics import BREAKER_STATE, OUTBOUND_LATENCY, OUTBOUND_REQUESTS
from switchboard_shared.request_context import propagation_headers
from switchboard_shared.url_guard import AddressGuard, UrlRefused

log = structlog.get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
BREAKER_GAUGE_VALUE = {
    CircuitBreakerState.CLOSED: 0,
    CircuitBreakerState.HALF_OPEN: 1,
    CircuitBreakerState.OPEN: 2,
}
MAX_RETRY_AFTER_SECONDS = 10.0
BACKOFF = wait_exponential_jitter(initial=0.05, max=2.0, jitter=0.1)


@dataclass(slots=True)
class DownstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return self.status < 400


class UpstreamStatusError(Exception):
    """A 5xx (or 429) answer: counts as a breaker failure and may be retried, then is returned as is."""

    def __init__(self, response: DownstreamResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


# Idle pooled connections are dropped after this long: below the fleet services' keep-alive (30 s by
# default, ``SWITCHBOARD_KEEP_ALIVE_SECONDS``), so a request never goes out on a connection being closed.
POOL_IDLE_SECONDS = 10.0


@dataclass(slots=True)
class ClientConfig:
    connect_timeout: float = 2.0
    read_timeout: float = 30.0
    retries: int = 2
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 15.0
    pool_size: int = 100
    default_headers: dict[str, str] = field(default_factory=dict)


class BreakerWatch(CircuitBreakerListener):  # type: ignore[misc]
    """Follows one breaker: its gauge, a log event at each change of state, and the state readiness reports
    (``state``). When it opened is kept on the monotonic clock: aiobreaker's own ``opens_at`` compares the
    UTC time it opened with local time, wrong by the host's UTC offset."""

    def __init__(
        self, name: str, *, event: str = "breaker_state_change", subject: str = "downstream"
    ) -> None:
        self.name = name
        self.event = event
        self.subject = subject
        self.opened_at: float | None = None

    def state_change(
        self, _breaker: CircuitBreaker, _old: CircuitBreakerBaseState | None, new: CircuitBreakerBaseState
    ) -> None:
        self.opened_at = time.monotonic() if new.state is CircuitBreakerState.OPEN else None
        BREAKER_STATE.labels(self.name).set(BREAKER_GAUGE_VALUE[new.state])
        log.warning(self.event, **{self.subject: self.name}, state=new.state.name.lower())

    def state(self, breaker: CircuitBreaker) -> str:
        """``closed``, ``open`` or ``half-open``: an open breaker whose reset timeout has passed is half-open
        (the next call is the trial), though aiobreaker moves it only on that call."""
        state: str = breaker.current_state.name.lower().replace("_", "-")
        reset = breaker.timeout_duration.total_seconds()
        if state == "open" and self.opened_at is not None and time.monotonic() - self.opened_at >= reset:
            return "half-open"
        return state


def watched_breaker(
    name: str,
    *,
    fail_max: int,
    reset_seconds: float,
    exclude: Sequence[Callable[[BaseException], bool]] = (),
    event: str = "breaker_state_change",
    subject: str = "downstream",
) -> tuple[CircuitBreaker, BreakerWatch]:
    """A circuit breaker with its ``BreakerWatch`` listening, its gauge at closed from the start."""
    watch = BreakerWatch(name, event=event, subject=subject)
    breaker = CircuitBreaker(
        fail_max=fail_max,
        timeout_duration=timedelta(seconds=reset_seconds),
        exclude=list(exclude),
        listeners=[watch],
        name=name,
    )
    BREAKER_STATE.labels(name).set(0)
    return breaker, watch


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's wait in seconds (RFC 9110: delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retry_wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, UpstreamStatusError) and exc.response.status == 429:
        retry_after = retry_after_seconds(exc.response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
    backoff: float = BACKOFF(state)
    return backoff


class Downstream:
    """A downstream service or SaaS API: pooled session, timeouts, retries, breaker, header propagation."""

    def __init__(
        self,
        name: str,
        base_url: str,
        config: ClientConfig | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        guard: AddressGuard | None = None,
    ) -> None:
        """``guard``: the downstream's address is a tenant's choice (a connector base URL), so every
        request URL and every address connected to passes the fleet's address guard."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.config = config or ClientConfig()
        self.guard = guard
        self._owns_session = session is None
        self.session = session or aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.config.pool_size,
                keepalive_timeout=POOL_IDLE_SECONDS,
                ttl_dns_cache=300,
                resolver=guard.resolver() if guard is not None else None,
            ),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=self.config.connect_timeout, sock_read=self.config.read_timeout
        )
        self.breaker, self.watch = watched_breaker(
            name,
            fail_max=self.config.breaker_fail_max,
            reset_seconds=self.config.breaker_reset_seconds,
            exclude=[lambda exc: isinstance(exc, AppError)],
        )

    @property
    def breaker_state(self) -> str:
        return self.watch.state(self.breaker)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def _check_address(self, url: str) -> None:
        if self.guard is None:
            return
        try:
            await self.guard.check(url)
        except UrlRefused as exc:
            raise AppError(
                ErrorCode.BAD_REQUEST, f"{self.name}: the configured address is refused: {exc}"
            ) from exc

    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = {**self.config.default_headers, **propagation_headers()}
        if headers:
            merged.update(headers)
        return merged

    def _timeout(self, timeout: float | None) -> aiohttp.ClientTimeout:
        if timeout is None:
            return self.timeout
        return aiohttp.ClientTimeout(total=timeout, connect=min(self.config.connect_timeout, timeout))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> DownstreamResponse:
        """Send one request; 4xx and 5xx come back as responses, transport failures as AppError."""
        method = method.upper()
        await self._check_address(self.url(path))
        retryable = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        body = orjson.dumps(json) if json is not None else data
        all_headers = self._headers(headers)
        if json is not None:
            all_headers.setdefault("Content-Type", "application/json")

        async def attempt() -> DownstreamResponse:
            async with self.session.request(
                method,
                self.url(path),
                data=body,
                params=params,
                headers=all_headers,
                timeout=self._timeout(timeout),
                allow_redirects=False,
            ) as resp:
                response = DownstreamResponse(resp.status, resp.headers, await resp.read())
            if response.status >= 500 or response.status == 429:
                raise UpstreamStatusError(response)
            return response

        started = time.perf_counter()
        try:
            async for retry in AsyncRetrying(
                stop=stop_after_attempt(1 + (self.config.retries if retryable else 0)),
                wait=_retry_wait,
                retry=retry_if_exception_type(
                    (aiohttp.ClientError, asyncio.TimeoutError, UpstreamStatusError)
                ),
                reraise=True,
            ):
                with retry:
                    result: DownstreamResponse = await self.breaker.call_async(attempt)
            OUTBOUND_REQUESTS.labels(self.name, "ok").inc()
            return result
        except UpstreamStatusError as exc:
            OUTBOUND_REQUESTS.labels(self.name, str(exc.response.status)).inc()
            return exc.response
        except CircuitBreakerError as exc:
            if isinstance(exc.__cause__, UpstreamStatusError):
                # The failure that tripped the breaker: still an answer from upstream.
                OUTBOUND_REQUESTS.labels(self.name, str(exc.__cause__.response.status)).inc()
                return exc.__cause__.response
            OUTBOUND_REQUESTS.labels(self.name, "breaker_open").inc()
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self.name} is unavailable (circuit open).",
                headers={"Retry-After": str(max(1, int(self.config.breaker_reset_seconds)))},
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            OUTBOUND_REQUESTS.labels(self.name, "timeout").inc()
            raise AppError(ErrorCode.UPSTREAM_TIMEOUT, f"{self.name} did not answer in time.") from exc
        except aiohttp.ClientError as exc:
            OUTBOUND_REQUESTS.labels(self.name, "unreachable").inc()
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self.name} is unavailable.",
                headers={"Retry-After": "5"},
            ) from exc
        finally:
            OUTBOUND_LATENCY.labels(self.name).observe(time.perf_counter() - started)

    async def json_request(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then raise AppError for any error status (upstream's own error passed on as details)."""
        response = await self.request(method, path, **kwargs)
        if response.status >= 500 or response.status == 429:
            raise AppError(
                ErrorCode.UPSTREAM_ERROR if response.status != 429 else ErrorCode.RATE_LIMITED,
                f"{self.name} answered {response.status}.",
                details=_error_details(response),
            )
        if response.status >= 400:
            detail = _error_details(response)
            code = str(detail.get("code")) if isinstance(detail, dict) else ""
            raise AppError(
                ErrorCode(code) if code in set(ErrorCode) else ErrorCode.UPSTREAM_ERROR,
                detail.get("message", f"{self.name} answered {response.status}.")
                if isinstance(detail, dict)
                else f"{self.name} answered {response.status}.",
                details=detail.get("details") if isinstance(detail, dict) else detail,
                status=response.status,
            )
        return response.json()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a streaming response (SSE); the breaker counts connection failures and 5xx at the start."""
        await self._check_address(self.url(path))
        all_headers = self._headers(headers)
        body = orjson.dumps(json) if json is not None else data
        if json is not None:
            all_headers.setdefault("Content-Type", "application/json")

        async def open_stream() -> aiohttp.ClientResponse:
            resp = await self.session.request(
                method.upper(),
                self.url(path),
                data=body,
                headers=all_headers,
                timeout=self._timeout(timeout),
                allow_redirects=False,
            )
            if resp.status >= 500:
                payload = await resp.read()
                resp.release()
                raise UpstreamStatusError(DownstreamResponse(resp.status, resp.headers, payload))
            return resp

        try:
            resp: aiohttp.ClientResponse = await self.breaker.call_async(open_stream)
        except UpstreamStatusError as exc:
            raise AppError(
                ErrorCode.UPSTREAM_ERROR,
                f"{self.name} answered {exc.response.status}.",
                details=_error_details(exc.response),
            ) from exc
        except CircuitBreakerError as exc:
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE, f"{self.name} is unavailable (circuit open)."
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise AppError(ErrorCode.UPSTREAM_TIMEOUT, f"{self.name} did not answer in time.") from exc
        except aiohttp.ClientError as exc:
            raise AppError(ErrorCode.UPSTREAM_UNAVAILABLE, f"{self.name} is unavailable.") from exc
        try:
            yield resp
        finally:
            resp.release()

    async def close(self) -> None:
        if self._owns_session:
            await self.session.close()


def _error_details(response: DownstreamResponse) -> Any:
    try:
        payload = response.json()
    except orjson.JSONDecodeError:
        return {"body": response.body[:500].decode("utf-8", "replace")}
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"]
    return payload


def client_config_from_settings(settings: Any, **overrides: Any) -> ClientConfig:
    config = ClientConfig(
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        retries=settings.http_retries,
        breaker_fail_max=settings.breaker_fail_max,
        breaker_reset_seconds=settings.breaker_reset_seconds,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config
