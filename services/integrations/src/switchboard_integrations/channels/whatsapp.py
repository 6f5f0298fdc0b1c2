"""WhatsApp Cloud API channel: the GET verification handshake, ``X-Hub-Signature-256`` over the raw body,
text messages in, delivery statuses recorded, replies through the Graph API messages endpoint."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from switchboard_integrations.channels.base import (
    ChannelEvent,
    ChannelPlugin,
    ChannelSettings,
    SendError,
    json_body,
    register_channel,
)
from switchboard_integrations.channels.render import Formatter, WhatsAppText
from switchboard_integrations.connectors.base import PluginSettings
from switchboard_integrations.connectors.signatures import check_hex_signature
from switchboard_shared.contracts.chat import MAX_MESSAGE_CHARS, Channel, EndUserProfile
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream, DownstreamResponse, retry_after_seconds

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Graph API error codes worth retrying: throttling and temporary failures.
RETRYABLE_CODES = {1, 2, 4, 17, 80007, 130429, 131000, 131016, 131056}
IGNORED_TYPES = {"reaction", "system", "unknown", "request_welcome"}
WHATSAPP_TEXT = WhatsAppText()


class WhatsAppSettings(ChannelSettings):
    phone_number_id: str = Field(pattern=r"^\d{5,30}$")
    api_version: str | None = Field(default=None, pattern=r"^v\d+\.\d+$", description="None: service default")


class WhatsAppSecrets(PluginSettings):
    app_secret: str = Field(min_length=8, description="Meta app secret (signs webhooks)")
    verify_token: str = Field(min_length=8, description="Token of the GET verification handshake")
    access_token: str = Field(min_length=8, description="System-user token for the Graph API")


@register_channel
class WhatsAppChannel(ChannelPlugin):
    channel = Channel.WHATSAPP
    settings_model = WhatsAppSettings
    secrets_model = WhatsAppSecrets
    max_text_chars = 4096
    default_api_version = "v21.0"
    settings: WhatsAppSettings
    secrets: WhatsAppSecrets

    @classmethod
    def external_id_of(cls, settings: PluginSettings, secrets: PluginSettings) -> str:  # noqa: ARG003
        assert isinstance(settings, WhatsAppSettings)
        return settings.phone_number_id

    @classmethod
    async def verified_external_id(
        cls, settings: PluginSettings, secrets: PluginSettings, downstream: Downstream
    ) -> str:
        """The phone number read back with the access token (Graph API ``GET /{phone-number-id}``): a
        token that cannot read the number does not own it."""
        assert isinstance(settings, WhatsAppSettings) and isinstance(secrets, WhatsAppSecrets)
        version = settings.api_version or cls.default_api_version
        response = await downstream.request(
            "GET",
            f"/{version}/{settings.phone_number_id}",
            params={"fields": "id"},
            headers={"Authorization": f"Bearer {secrets.access_token}"},
        )
        payload = json_body(response)
        if response.status in (400, 401, 403, 404):
            raise AppError(
                ErrorCode.VALIDATION_ERROR, "The access token cannot read this phone number id (Graph API)."
            )
        found = payload.get("id") if isinstance(payload, dict) else None
        if response.status != 200 or str(found) != settings.phone_number_id:
            raise AppError(
                ErrorCode.UPSTREAM_ERROR,
                f"The Graph API answered {response.status} for the phone number; try again shortly.",
            )
        return settings.phone_number_id

    def verify_subscription(self, query: Mapping[str, str]) -> str:
        """The GET handshake: echo ``hub.challenge`` when the mode and verify token are right."""
        if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
            raise AppError(ErrorCode.BAD_REQUEST, "Expected hub.mode=subscribe and a hub.challenge.")
        presented = (query.get("hub.verify_token") or "").encode()
        if not hmac.compare_digest(presented, self.secrets.verify_token.encode()):
            raise AppError(ErrorCode.FORBIDDEN, "The verify token does not match.")
        return query["hub.challenge"]

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        check_hex_signature(
            headers.get(SIGNATURE_HEADER), secret=self.secrets.app_secret, body=body, header=SIGNATURE_HEADER
        )

    def parse(self, payload: Any) -> list[ChannelEvent]:
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise AppError(ErrorCode.BAD_REQUEST, "Not a WhatsApp Business Account webhook.")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise AppError(ErrorCode.BAD_REQUEST, "A WhatsApp webhook needs an 'entry' list.")
        events: list[ChannelEvent] = []
        for entry in entries:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise AppError(ErrorCode.BAD_REQUEST, "Each WhatsApp entry needs a 'changes' list.")
            for change in changes:
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    raise AppError(ErrorCode.BAD_REQUEST, "Each WhatsApp change needs a 'value' object.")
                if change.get("field") != "messages":
                    continue
                metadata = value.get("metadata") or {}
                phone_id = str(metadata.get("phone_number_id", "")) if isinstance(metadata, dict) else ""
                if phone_id and phone_id != self.context.external_id:
                    raise AppError(ErrorCode.BAD_REQUEST, "The webhook is for another phone number.")
                events.extend(self._messages(value))
                events.extend(self._statuses(value))
        return events

    def _messages(self, value: dict[str, Any]) -> list[ChannelEvent]:
        names: dict[str, str] = {}
        for contact in value.get("contacts") or []:
            if isinstance(contact, dict) and isinstance(contact.get("profile"), dict):
                names[str(contact.get("wa_id"))] = str(contact["profile"].get("name") or "")
        events: list[ChannelEvent] = []
        for message in value.get("messages") or []:
            if not isinstance(message, dict) or not message.get("id") or not message.get("from"):
                raise AppError(ErrorCode.BAD_REQUEST, "A WhatsApp message needs 'id' and 'from'.")
            sender = str(message["from"])
            kind: Any = "unsupported"
            text = ""
            body = (message.get("text") or {}).get("body") if isinstance(message.get("text"), dict) else None
            if message.get("type") == "text" and isinstance(body, str) and body.strip():
                kind, text = "text", body.strip()[:MAX_MESSAGE_CHARS]
            elif message.get("type") in IGNORED_TYPES:
                kind = "ignore"
            events.append(
                ChannelEvent(
                    kind=kind,
                    event_key=str(message["id"]),
                    external_key=f"{self.context.external_id}:{sender}",
                    end_user_id=f"whatsapp:{sender}",
                    text=text,
                    profile=EndUserProfile(name=names.get(sender) or None, phone=f"+{sender}"),
                )
            )
        return events

    def _statuses(self, value: dict[str, Any]) -> list[ChannelEvent]:
        events: list[ChannelEvent] = []
        for status in value.get("statuses") or []:
            if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
                raise AppError(ErrorCode.BAD_REQUEST, "A WhatsApp status needs 'id' and 'status'.")
            errors = status.get("errors") if isinstance(status.get("errors"), list) else []
            events.append(
                ChannelEvent(
                    kind="status",
                    event_key=f"status:{status['id']}:{status['status']}",
                    provider_message_id=str(status["id"]),
                    status=str(status["status"]),
                    details={"errors": errors[:3]} if errors else {},
                )
            )
        return events

    @property
    def formatter(self) -> Formatter:
        return WHATSAPP_TEXT

    async def send_chunk(self, recipient: str, text: str) -> str:
        version = self.settings.api_version or self.default_api_version
        return await self.post_message(
            f"/{version}/{self.settings.phone_number_id}/messages",
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": recipient,
                "type": "text",
                "text": {"preview_url": False, "body": text},
            },
            headers={"Authorization": f"Bearer {self.secrets.access_token}"},
        )

    def sent_message_id(self, response: DownstreamResponse, payload: Any) -> str:
        if response.status < 300 and isinstance(payload, dict):
            messages = payload.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                return str(messages[0].get("id", ""))
        error = payload.get("error") if isinstance(payload, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", "") if isinstance(error, dict) else ""
        raise SendError(
            f"WhatsApp answered {response.status}: {message}"[:300],
            retryable=response.status >= 500 or response.status == 429 or code in RETRYABLE_CODES,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
