"""Provider plugins: each provider module registers itself by name (``register("openai", factory, ...)``),
so the registry builds a tenant's chain without naming any provider but the built-in ``extractive``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from switchboard_chat.providers.base import ChatProvider
from switchboard_chat.settings import ChatSettings

# The fleet's own (API key, base URL, model) of a provider, from the service's settings.
FleetDefaults = Callable[[ChatSettings], tuple[str | None, str | None, str]]
Requirement = Literal["api_key", "base_url", "model"]


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """What one provider configuration is built with: the resolved key, URL and model, and the limits."""

    key: str  # the configuration's fingerprint: one instance and one breaker per key
    api_key: str | None
    base_url: str | None
    model: str
    timeout: float
    total_timeout: float
    max_tokens: int
    temperature: float
    settings: ChatSettings

    def model_options(self) -> dict[str, Any]:
        """The keyword arguments of a chat-model builder."""
        return {
            "key": self.key,
            "api_key": self.api_key,
            "base_url": self.base_url,
            "model": self.model,
            "timeout": self.timeout,
            "total_timeout": self.total_timeout,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    factory: Callable[[ProviderOptions], ChatProvider]
    fleet: FleetDefaults
    # What the provider cannot be built without, with the message that says so.
    requires: Mapping[Requirement, str] = field(default_factory=dict)
    # False: a tenant's own base URL may be called without a key (self-hosted OpenAI-compatible servers).
    tenant_url_needs_key: bool = True
    # False: the fleet's model is always used (the local model file is never the tenant's to choose).
    tenant_model: bool = True


PLUGINS: dict[str, ProviderPlugin] = {}


def register(
    name: str,
    factory: Callable[[ProviderOptions], ChatProvider],
    *,
    fleet: FleetDefaults,
    requires: Mapping[Requirement, str] | None = None,
    tenant_url_needs_key: bool = True,
    tenant_model: bool = True,
) -> None:
    PLUGINS[name] = ProviderPlugin(
        factory=factory,
        fleet=fleet,
        requires=dict(requires or {}),
        tenant_url_needs_key=tenant_url_needs_key,
        tenant_model=tenant_model,
    )
