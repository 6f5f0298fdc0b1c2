"""Messenger channel plugins: a base class (verify a webhook, parse it into channel events, send text)
and the registry that maps a channel to its plugin."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from switchboard_integrations.channels.render import PLAIN, Formatter, OutboundText, render
from switchboard_integrations.connectors.base import ConfiguredPlugin, PluginSettings
from switchboard_shared.contracts.chat import Channel, EndUserProfile
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream, DownstreamResponse

EventKind = Literal["text", "start", "edited", "unsupported", "status", "ignore"]


@dataclass(slots=True)
class ChannelEvent:
    kind: EventKind
    event_key: str = ""
    external_key: str = ""
    end_user_id: str = ""
    text: str = ""
    profile: EndUserProfile | None = None
    provider_message_id: str | None = None
    status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """A send the channel refused; ``retryable`` when trying again later may work."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, unparsable: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.unparsable = unparsable


def json_body(response: DownstreamResponse) -> Any:
    """A platform's answer as JSON; None when the body is not JSON (an error page, a proxy's answer)."""
    try:
        return response.json()
    except ValueError:
        return None


class ChannelSettings(PluginSettings):
    """Settings every messenger binding has."""

    api_base: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=500,
        description="API base for this account alone (a stand-in for a trial); None: the fleet's",
    )


@dataclass(slots=True)
class BindingContext:
    binding_id: str
    tenant_id: str
    external_id: str
    settings: PluginSettings
    secrets: PluginSettings
    downstream: Downstream


class ChannelPlugin(ConfiguredPlugin, abc.ABC):
    channel: ClassVar[Channel]
    max_text_chars: ClassVar[int]
    settings: ChannelSettings

    def __init__(self, context: BindingContext) -> None:
        super().__init__(context.settings, context.secrets)
        self.context = context

    @property
    def source(self) -> str:
        return f"{self.channel.value}:{self.context.external_id}"

    @classmethod
    @abc.abstractmethod
    def external_id_of(cls, settings: PluginSettings, secrets: PluginSettings) -> str:
        """The id the platform's webhook path carries (bot id, phone number id)."""

    @classmethod
    async def verified_external_id(
        cls, settings: PluginSettings, secrets: PluginSettings, downstream: Downstream
    ) -> str:
        """The account id to bind, as the platform itself reports it for these credentials: a tenant must
        prove it holds the account before its id is bound (and locked to the tenant)."""
        raise NotImplementedError

    @abc.abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AppError(UNAUTHORIZED / FORBIDDEN) unless the webhook is genuine."""

    @abc.abstractmethod
    def parse(self, payload: Any) -> list[ChannelEvent]:
        """Raise AppError(BAD_REQUEST) when the body is not this platform's webhook shape."""

    @property
    def formatter(self) -> Formatter:
        """How this binding writes formatted text; plain unless the platform has a markup."""
        return PLAIN

    def render(self, message: OutboundText) -> list[str]:
        """The message in this platform's markup, in pieces that each fit one platform message."""
        return render(message, self.formatter, self.max_text_chars)

    @abc.abstractmethod
    async def send_chunk(self, recipient: str, text: str) -> str:
        """Send one rendered piece; returns the platform's message id or raises SendError / AppError."""

    async def post_message(
        self, path: str, body: dict[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> str:
        """Post one message to the platform's API: its message id, or the SendError its answer means. Never
        repeated here (the platform may have sent it): the delivery's retries decide."""
        response = await self.context.downstream.request(
            "POST", path, json=body, headers=headers, idempotent=False
        )
        return self.sent_message_id(response, json_body(response))

    @abc.abstractmethod
    def sent_message_id(self, response: DownstreamResponse, payload: Any) -> str:
        """The message id of a send the platform accepted; SendError (retryable or not) for a refusal.
        ``payload`` is the answer's JSON, None when it is not JSON."""


P = TypeVar("P", bound=type[ChannelPlugin])
CHANNELS: dict[Channel, type[ChannelPlugin]] = {}


def register_channel(cls: P) -> P:
    CHANNELS[cls.channel] = cls
    return cls


def channel_class(channel: Channel | str) -> type[ChannelPlugin]:
    try:
        return CHANNELS[Channel(channel)]
    except (KeyError, ValueError) as exc:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"Channel {channel!r} has no messenger plugin; known: {', '.join(sorted(CHANNELS))}.",
        ) from exc


def validate_binding(
    channel: Channel | str, settings: Mapping[str, Any], secrets: Mapping[str, Any]
) -> tuple[PluginSettings, PluginSettings, str]:
    cls = channel_class(channel)
    parsed_settings, parsed_secrets = cls.parse_config(
        settings, secrets, invalid=f"The {channel} binding is not valid."
    )
    return parsed_settings, parsed_secrets, cls.external_id_of(parsed_settings, parsed_secrets)
