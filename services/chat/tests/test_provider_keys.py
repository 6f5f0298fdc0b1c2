"""Which key goes to which provider URL: the fleet's keys only to the fleet's own base URLs, a tenant's
own base URL only with the tenant's own key, and tenant base URLs through the address guard."""

from __future__ import annotations

import pytest

from switchboard_chat.providers.registry import ProviderRegistry
from switchboard_chat.settings import ChatSettings
from switchboard_shared.contracts.chat import ProviderConfig
from switchboard_shared.errors import AppError

FLEET = {
    "openai": ("sk-fleet-openai", "https://api.openai.com/v1"),
    "anthropic": ("sk-ant-fleet", "https://api.anthropic.com"),
    "google": ("AIza-fleet", "generativelanguage.googleapis.com"),
    "openai-compatible": ("sk-fleet-vllm", "http://vllm.internal:8000/v1"),
}


def registry(**overrides: object) -> ProviderRegistry:
    values: dict[str, object] = {"environment": "test", "internal_token": "chat-test-internal-token"}
    for name, (key, url) in FLEET.items():
        prefix = name.replace("-", "_")
        values[f"{prefix}_api_key"] = key
        values[f"{prefix}_base_url"] = url
    values.update(overrides)
    return ProviderRegistry(ChatSettings(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(FLEET))
def test_fleet_key_goes_only_to_the_fleet_url(name: str) -> None:
    reg = registry()
    fleet_key, fleet_url = FLEET[name]
    _, default = reg._resolve(name, None)
    assert default["api_key"] == fleet_key and default["base_url"] == fleet_url
    _, same = reg._resolve(name, ProviderConfig(base_url=fleet_url + "/", model="m"))
    assert same["api_key"] == fleet_key
    _, own_url = reg._resolve(name, ProviderConfig(base_url="https://llm.attacker.example/v1"))
    assert own_url["api_key"] is None and own_url["base_url"] == "https://llm.attacker.example/v1"
    _, own_both = reg._resolve(name, ProviderConfig(base_url="https://llm.tenant.example", api_key="sk-t"))
    assert own_both["api_key"] == "sk-t"
    _, own_key = reg._resolve(name, ProviderConfig(api_key="sk-t"))
    assert own_key["api_key"] == "sk-t" and own_key["base_url"] == fleet_url


@pytest.mark.parametrize("name", ["openai", "anthropic", "google"])
def test_tenant_url_without_tenant_key_is_skipped(name: str) -> None:
    with pytest.raises(AppError, match="own API key"):
        registry().get(name, ProviderConfig(base_url="https://llm.attacker.example/v1"))


def test_local_model_file_is_the_fleets() -> None:
    _, resolved = registry(local_model_path="/models/fleet.gguf")._resolve(
        "local", ProviderConfig(model="/etc/passwd")
    )
    assert resolved["model"] == "/models/fleet.gguf"


@pytest.mark.asyncio
async def test_tenant_base_url_passes_the_address_guard() -> None:
    reg = registry()
    for url in (
        "http://127.0.0.1:8001/v1",
        "http://[::1]/v1",
        "http://169.254.169.254/",
        "http://10.1.2.3/v1",
    ):
        with pytest.raises(AppError, match="refused"):
            await reg.check_base_url("openai-compatible", ProviderConfig(base_url=url, api_key="sk-t"))
    # The fleet's own URL is the operator's choice and is not checked.
    await registry(openai_compatible_base_url="http://127.0.0.1:8080/v1").check_base_url(
        "openai-compatible", ProviderConfig(base_url="http://127.0.0.1:8080/v1")
    )
    allowed = registry(url_allowlist=["127.0.0.1:8080"])
    await allowed.check_base_url("openai-compatible", ProviderConfig(base_url="http://127.0.0.1:8080/v1"))
    with pytest.raises(AppError):
        await allowed.check_base_url("openai-compatible", ProviderConfig(base_url="http://127.0.0.1:8081/v1"))
