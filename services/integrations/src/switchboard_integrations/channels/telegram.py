"""Telegram Bot API channel: webhook with the secret-token header, updates normalised to channel events,
``sendMessage`` in HTML (or MarkdownV2) rendered from the answer's Markdown, long answers split."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from switchboard_integrations.channels.base import (
    ChannelEvent,
    ChannelPlugin,
    ChannelSettings,
    SendError,
    json_body,
    register_channel,
)
from switchboard_integrations.channels.render import PLAIN, Formatter, TelegramHtml, TelegramMarkdownV2
from switchboard_integrations.connectors.base import PluginSettings
from switchboard_integrations.connectors.signatures import check_shared_secret
from switchboard_shared.contracts.chat import MAX_MESSAGE_CHARS, Channel, EndUserProfile
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream, DownstreamResponse

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TOKEN_RE = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{20,}$")
START_RE = re.compile(r"^/start(@\w+)?(\s|$)")
UNSUPPORTED_KEYS = (
    "sticker",
    "photo",
    "video",
    "voice",
    "audio",
    "document",
    "animation",
    "video_note",
    "location",
    "contact",
    "poll",
    "dice",
)


FORMATTERS: dict[str | None, Formatter] = {
    "HTML": TelegramHtml(),
    "MarkdownV2": TelegramMarkdownV2(),
    None: PLAIN,
}
TAG = re.compile(r"<[^>]*>")


class TelegramSettings(ChannelSettings):
    parse_mode: Literal["HTML", "MarkdownV2"] | None = Field(default="HTML", description="None: plain text")


class TelegramSecrets(PluginSettings):
    bot_token: str = Field(pattern=TOKEN_RE.pattern)
    secret_token: str = Field(pattern=r"^[A-Za-z0-9_-]{1,256}$", description="setWebhook secret_token")


@register_channel
class TelegramChannel(ChannelPlugin):
    channel = Channel.TELEGRAM
    settings_model = TelegramSettings
    secrets_model = TelegramSecrets
    max_text_chars = 4096
    settings: TelegramSettings
    secrets: TelegramSecrets

    @classmethod
    def external_id_of(cls, settings: PluginSettings, secrets: PluginSettings) -> str:  # noqa: ARG003
        assert isinstance(secrets, TelegramSecrets)
        return secrets.bot_token.split(":", 1)[0]

    @classmethod
    async def verified_external_id(
        cls,
        settings: PluginSettings,  # noqa: ARG003
        secrets: PluginSettings,
        downstream: Downstream,
    ) -> str:
        """``getMe`` with the token (https://core.telegram.org/bots/api#getme): the id of the bot it
        belongs to, or a refusal when Telegram does not accept the token."""
        assert isinstance(secrets, TelegramSecrets)
        response = await downstream.request("GET", f"/bot{secrets.bot_token}/getMe")
        payload = json_body(response)
        result = payload.get("result") if isinstance(payload, dict) and payload.get("ok") else None
        if response.status in (401, 404) or (response.status == 200 and not isinstance(result, dict)):
            raise AppError(ErrorCode.VALIDATION_ERROR, "Telegram does not accept this bot token (getMe).")
        if response.status != 200 or not isinstance(result, dict):
            raise AppError(
                ErrorCode.UPSTREAM_ERROR, f"Telegram answered {response.status} to getMe; try again shortly."
            )
        bot_id = result.get("id")
        if type(bot_id) is not int or result.get("is_bot") is False:
            raise AppError(ErrorCode.UPSTREAM_ERROR, "Telegram's getMe answer has no bot id.")
        return str(bot_id)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:  # noqa: ARG002
        check_shared_secret(
            headers.get(SECRET_HEADER), secret=self.secrets.secret_token, header=SECRET_HEADER
        )

    def parse(self, payload: Any) -> list[ChannelEvent]:
        if not isinstance(payload, dict) or type(payload.get("update_id")) is not int:
            raise AppError(ErrorCode.BAD_REQUEST, "Not a Telegram update (no integer 'update_id').")
        key = str(payload["update_id"])
        if isinstance(payload.get("edited_message"), dict):
            edited = payload["edited_message"]
            return [self._event("edited", key, edited)]
        message = payload.get("message")
        if not isinstance(message, dict):
            return [ChannelEvent(kind="ignore", event_key=key)]
        text = message.get("text")
        if isinstance(text, str) and text.strip():
            kind = "start" if START_RE.match(text.strip()) else "text"
            return [self._event(kind, key, message, text=text.strip()[:MAX_MESSAGE_CHARS])]
        if any(name in message for name in UNSUPPORTED_KEYS) or "caption" in message:
            return [self._event("unsupported", key, message)]
        # Service messages (a member joined, a pinned message …) need no answer.
        return [ChannelEvent(kind="ignore", event_key=key)]

    def _event(self, kind: Any, key: str, message: dict[str, Any], *, text: str = "") -> ChannelEvent:
        chat = message.get("chat")
        raw_sender = message.get("from")
        sender: dict[str, Any] = raw_sender if isinstance(raw_sender, dict) else {}
        if not isinstance(chat, dict) or chat.get("id") is None:
            raise AppError(ErrorCode.BAD_REQUEST, "A Telegram message needs 'chat.id'.")
        user_id = sender.get("id", chat["id"])
        name = " ".join(
            part for part in (sender.get("first_name"), sender.get("last_name")) if isinstance(part, str)
        )
        return ChannelEvent(
            kind=kind,
            event_key=key,
            external_key=f"{self.context.external_id}:{chat['id']}",
            end_user_id=f"telegram:{user_id}",
            text=text,
            profile=EndUserProfile(
                name=name or None,
                locale=sender.get("language_code") if isinstance(sender.get("language_code"), str) else None,
            ),
        )

    @property
    def formatter(self) -> Formatter:
        return FORMATTERS[self.settings.parse_mode]

    async def send_chunk(self, recipient: str, text: str) -> str:
        body: dict[str, Any] = {"chat_id": recipient, "text": text}
        if self.settings.parse_mode is not None:
            body["parse_mode"] = self.settings.parse_mode
        path = f"/bot{self.secrets.bot_token}/sendMessage"
        try:
            return await self.post_message(path, body)
        except SendError as exc:
            if not exc.unparsable or self.settings.parse_mode != "HTML":
                raise
        # Telegram refused our markup: the same words without it beat no answer.
        return await self.post_message(path, {"chat_id": recipient, "text": html.unescape(TAG.sub("", text))})

    def sent_message_id(self, response: DownstreamResponse, payload: Any) -> str:
        if response.status == 200 and isinstance(payload, dict) and payload.get("ok"):
            return str((payload.get("result") or {}).get("message_id", ""))
        description = str(payload.get("description", "")) if isinstance(payload, dict) else ""
        parameters = payload.get("parameters") if isinstance(payload, dict) else None
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if response.status == 429:
            raise SendError(
                f"Telegram: {description or 'too many requests'}",
                retryable=True,
                retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            )
        raise SendError(
            f"Telegram answered {response.status}: {description}"[:300],
            retryable=response.status >= 500,
            unparsable=response.status == 400 and "can't parse entities" in description.lower(),
        )
