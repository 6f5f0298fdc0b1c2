"""Per-tenant assistant settings: read with defaults, replace, and mask API keys on the way out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_chat.assistant.models import AssistantSettingsRow
from switchboard_chat.conversations.models import utcnow
from switchboard_shared.contracts.chat import AssistantSettings, ProviderConfig, ProviderName
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.url_guard import UrlRefused, validate_base_url


def _from_row(row: AssistantSettingsRow) -> AssistantSettings:
    return AssistantSettings.model_validate(
        {
            "name": row.name,
            "instructions": row.instructions,
            "languages": row.languages,
            "providers": row.providers or None,
            "provider_configs": row.provider_configs,
            "escalation": row.escalation,
            "greeting": row.greeting,
            "tools": row.tools,
            "kb_ids": row.kb_ids,
        }
    )


async def load(*, session: AsyncSession, tenant_id: str) -> AssistantSettings:
    """The tenant's settings with secrets (for the turn); defaults when the tenant never saved any."""
    row = await session.get(AssistantSettingsRow, tenant_id)
    return _from_row(row) if row is not None else AssistantSettings()


def public_view(settings: AssistantSettings, default_providers: Sequence[str] = ()) -> AssistantSettings:
    """The settings as the API shows them: API keys replaced by ``api_key_set``, and the service's default
    chain (the one a tenant without ``providers`` is answered by) alongside."""
    masked = {
        name: config.model_copy(update={"api_key": None, "api_key_set": bool(config.api_key)})
        for name, config in settings.provider_configs.items()
    }
    known = set(get_args(ProviderName))
    defaults = [name for name in default_providers if name in known]
    return settings.model_copy(update={"provider_configs": masked, "default_providers": defaults})


def check_base_url(name: str, url: str | None) -> None:
    """A provider base URL is http(s) with a host and no credentials, query or fragment (Gemini's may be
    a bare ``host[:port]``); where it may point is checked by the address guard when it is used."""
    if url is None:
        return
    try:
        validate_base_url(url if "://" in url else f"https://{url}")
    except UrlRefused as exc:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"provider_configs.{name}.base_url: {exc}") from exc


async def replace(*, session: AsyncSession, tenant_id: str, new: AssistantSettings) -> AssistantSettings:
    """Store new settings; a provider config sent without an API key keeps the stored key."""
    row = await session.get(AssistantSettingsRow, tenant_id)
    old = _from_row(row) if row is not None else AssistantSettings()
    configs: dict[str, Any] = {}
    for name, config in new.provider_configs.items():
        check_base_url(name, config.base_url)
        previous = old.provider_configs.get(name, ProviderConfig())
        # A stored key stays with the base URL it was given for: moving the URL needs the key again.
        keeps_key = (config.base_url or None) == (previous.base_url or None)
        api_key = config.api_key if config.api_key is not None else (previous.api_key if keeps_key else None)
        configs[name] = config.model_copy(update={"api_key": api_key, "api_key_set": False}).model_dump(
            mode="json"
        )
    values: dict[str, Any] = {
        "name": new.name,
        "instructions": new.instructions,
        "languages": new.languages,
        "providers": list(new.providers or []),
        "provider_configs": configs,
        "escalation": new.escalation.model_dump(mode="json"),
        "greeting": new.greeting,
        "tools": list(new.tools),
        "kb_ids": new.kb_ids,
        "updated_at": utcnow(),
    }
    if row is None:
        session.add(AssistantSettingsRow(tenant_id=tenant_id, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
    await session.flush()
    return await load(session=session, tenant_id=tenant_id)
