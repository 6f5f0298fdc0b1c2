"""The provider registry: builds each tenant's chain from the registered provider plugins (and the built-in
extractive provider), keeps one breaker per provider configuration, and streams from the first provider
that produces a first token in time.

A provider that fails or goes silent for longer than its timeout after its first token is dropped too: the
chain yields ``ProviderAbandoned`` (the text streamed so far must be discarded) and the next provider
answers, so a cut-off answer is never given as a complete one. So is one that echoes its prompt (its text
holds the tags that fence the passages), as small base models do: the customer never reads the prompt.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import structlog
from aiobreaker import CircuitBreaker, CircuitBreakerError

import switchboard_chat.providers.langchain
import switchboard_chat.providers.local  # noqa: F401  (provider plugins register themselves)
from switchboard_chat.providers.base import (
    FENCE,
    ChatProvider,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.extractive import ExtractiveProvider
from switchboard_chat.providers.plugins import PLUGINS, ProviderOptions
from switchboard_chat.settings import ChatSettings
from switchboard_shared.contracts.chat import AssistantSettings, ProviderConfig
from switchboard_shared.contracts.routes import TENANT_SECRET_SCOPES
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.url_guard import AddressGuard, UrlRefused

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ProviderSelected:
    name: str


@dataclass(slots=True)
class ProviderSkipped:
    name: str
    reason: str


@dataclass(slots=True)
class ProviderAbandoned:
    """The selected provider failed mid-answer; what it streamed is void and the next provider answers."""

    name: str
    reason: str


ChainEvent = GenerationEvent | ProviderSelected | ProviderSkipped | ProviderAbandoned


class ProviderRegistry:
    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.providers: dict[str, ChatProvider] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.extractive = ExtractiveProvider(first_token_timeout=settings.provider_timeout_seconds)
        self.guard = AddressGuard(settings.url_allowlist)

    def _resolve(self, name: str, config: ProviderConfig | None) -> tuple[str, dict[str, object]]:
        """The key, base URL and model a provider is built with. The fleet's key goes only to the fleet's
        own base URL: a tenant that chooses another base URL must bring its own key (none is sent
        otherwise). The local model file is the fleet's: a tenant never chooses a path on this disk."""
        s = self.settings
        config = config or ProviderConfig()
        plugin = PLUGINS.get(name)
        fleet_key, fleet_url, model = plugin.fleet(s) if plugin is not None else (None, None, "")
        tenant_url = tenant_base_url(config.base_url, fleet_url)
        resolved: dict[str, object] = {
            "api_key": config.api_key if tenant_url else (config.api_key or fleet_key),
            "base_url": tenant_url or fleet_url,
            "tenant_url": tenant_url is not None,
            "model": (config.model or model) if plugin is None or plugin.tenant_model else model,
            "timeout": config.timeout_seconds or s.provider_timeout_seconds,
        }
        fingerprint = hashlib.sha256(repr(sorted(resolved.items())).encode()).hexdigest()[:16]
        return f"{name}:{fingerprint}", resolved

    async def check_base_url(self, name: str, config: ProviderConfig | None) -> None:
        """A base URL the tenant chose passes the fleet's address guard (AppError when refused)."""
        _, resolved = self._resolve(name, config)
        url = resolved["base_url"]
        if not resolved["tenant_url"] or not isinstance(url, str):
            return
        try:
            await self.guard.check(url if "://" in url else f"https://{url}")
        except UrlRefused as exc:
            raise AppError(ErrorCode.BAD_REQUEST, f"The {name} base URL is refused: {exc}") from exc

    @property
    def known(self) -> set[str]:
        """The providers a chain may name: the built-in extractive one and every registered plugin."""
        return {"extractive", *PLUGINS}

    def get(self, name: str, config: ProviderConfig | None = None) -> ChatProvider:
        if name == "extractive":
            return self.extractive
        plugin = PLUGINS.get(name)
        if plugin is None:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"Unknown provider {name!r}.")
        key, r = self._resolve(name, config)
        provider = self.providers.get(key)
        if provider is not None:
            return provider
        s = self.settings
        options = ProviderOptions(
            key=key,
            api_key=r["api_key"] if isinstance(r["api_key"], str) else None,
            base_url=r["base_url"] if isinstance(r["base_url"], str) else None,
            model=str(r["model"]),
            timeout=float(r["timeout"]),  # type: ignore[arg-type]
            total_timeout=s.provider_total_timeout_seconds,
            max_tokens=s.max_output_tokens,
            temperature=s.temperature,
            settings=s,
        )
        if r["tenant_url"] and not options.api_key and plugin.tenant_url_needs_key:
            raise AppError(
                ErrorCode.BAD_REQUEST,
                f"{name} with the tenant's own base URL needs the tenant's own API key.",
            )
        for requirement, message in plugin.requires.items():
            if not getattr(options, requirement):
                raise AppError(ErrorCode.BAD_REQUEST, message)
        provider = plugin.factory(options)
        self.providers[key] = provider
        return provider

    def breaker(self, key: str) -> CircuitBreaker:
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                fail_max=self.settings.provider_breaker_fail_max,
                timeout_duration=timedelta(seconds=self.settings.provider_breaker_reset_seconds),
                name=key,
            )
            self.breakers[key] = breaker
        return breaker

    def chain_names(
        self, assistant: AssistantSettings, override: list[str] | None, *, scope: str | None = None
    ) -> list[str]:
        """The tenant's chain, or ``override`` when the caller may choose: only the tenant's own secret keys
        (server, admin: the console's playground) and the fleet's services, and only among the providers
        the tenant allows (its chain, the providers it configured, and the offline ``extractive``)."""
        configured = list(assistant.providers or self.settings.default_providers)
        names = list(override or configured)
        unknown = [name for name in names if name not in self.known]
        if unknown:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"Unknown provider(s): {', '.join(unknown)}.")
        if not override:
            return names
        if scope is not None and scope not in TENANT_SECRET_SCOPES:
            raise AppError(
                ErrorCode.FORBIDDEN, "Only the tenant's server and admin keys may choose the providers."
            )
        allowed = {*configured, *assistant.provider_configs, "extractive"}
        refused = [name for name in names if name not in allowed]
        if refused:
            raise AppError(
                ErrorCode.FORBIDDEN,
                f"Not among the tenant's providers: {', '.join(refused)} (allowed: {', '.join(sorted(allowed))}).",
            )
        return names

    async def stream(
        self, names: list[str], assistant: AssistantSettings, request: GenerationRequest
    ) -> AsyncIterator[ChainEvent]:
        """Try each provider in order; the extractive provider answers when the whole chain has failed."""
        for name in [*names, *([] if "extractive" in names else ["extractive"])]:
            config = assistant.provider_configs.get(name)  # type: ignore[call-overload]
            try:
                if name in self.known:
                    await self.check_base_url(name, config)
                provider = self.get(name, config)
            except AppError as exc:
                yield ProviderSkipped(name, exc.message)
                continue
            breaker = self.breaker(provider.key)
            events = provider.stream(request)
            first = await _first_event(name, provider, breaker, events)
            if isinstance(first, ProviderSkipped):
                yield first
                continue
            yield ProviderSelected(name)
            echo = EchoWatch()
            event = first
            silence: float | None = provider.first_token_timeout
            while True:
                if echo.seen(event):
                    await _close_quietly(events)
                    reason = "echoed its prompt"
                    log.warning("provider_failed_mid_answer", provider=name, reason=reason)
                    await _count_failure(breaker, RuntimeError(reason))
                    yield ProviderAbandoned(name, reason)
                    break
                yield event
                try:
                    event = await asyncio.wait_for(events.__anext__(), timeout=silence)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    await _close_quietly(events)
                    reason = (
                        "stalled mid-answer"
                        if isinstance(exc, TimeoutError)
                        else f"failed mid-answer: {type(exc).__name__}: {str(exc)[:200]}"
                    )
                    log.warning("provider_failed_mid_answer", provider=name, reason=reason)
                    await _count_failure(breaker, exc)
                    yield ProviderAbandoned(name, reason)
                    break
                # A running tool is bounded by its own timeout (and the turn's total), not by token silence.
                silence = (
                    None
                    if isinstance(event, ToolEvent) and event.status == "started"
                    else (provider.first_token_timeout)
                )

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()


class EchoWatch:
    """Watches a provider's text for the tags that fence the prompt's passages (across token boundaries)."""

    def __init__(self) -> None:
        self.tail = ""

    def seen(self, event: GenerationEvent) -> bool:
        if not isinstance(event, TextDelta):
            return False
        self.tail = (self.tail + event.text)[-400:]
        return FENCE.search(self.tail) is not None


def tenant_base_url(chosen: str | None, fleet_url: str | None) -> str | None:
    """The tenant's base URL when it chose one other than the fleet's own (else None)."""
    if not chosen or not chosen.strip():
        return None
    if fleet_url and chosen.strip().rstrip("/") == fleet_url.strip().rstrip("/"):
        return None
    return chosen.strip()


async def _first_event(
    name: str,
    provider: ChatProvider,
    breaker: CircuitBreaker,
    events: AsyncGenerator[GenerationEvent, None],
) -> GenerationEvent | ProviderSkipped:
    """The provider's first event within its first-token timeout, through its breaker; else why it is
    skipped (its stream closed)."""
    try:
        first: GenerationEvent = await breaker.call_async(
            lambda: asyncio.wait_for(events.__anext__(), timeout=provider.first_token_timeout)
        )
    except CircuitBreakerError:
        await events.aclose()
        return ProviderSkipped(name, "circuit open")
    except StopAsyncIteration:
        return ProviderSkipped(name, "empty answer")
    except Exception as exc:
        await _close_quietly(events)
        reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        log.warning("provider_failed", provider=name, reason=reason)
        return ProviderSkipped(name, reason)
    return first


async def _count_failure(breaker: CircuitBreaker, exc: Exception) -> None:
    """Tell the provider's breaker about a failure that happened after the guarded first-token call."""

    async def fail() -> None:
        raise exc

    try:
        await breaker.call_async(fail)
    except Exception:  # the failure itself, or the breaker now open: both already handled by the caller
        return


async def _close_quietly(events: AsyncGenerator[GenerationEvent, None]) -> None:
    try:
        await events.aclose()
    except Exception as exc:
        log.debug("provider_close_failed", error=str(exc)[:200])
