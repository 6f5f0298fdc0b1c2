"""The chat service's internal API as integrations uses it: inbound messages, operator messages,
ownership and status changes. Identity travels in the tenant header, as everywhere in the fleet."""

from __future__ import annotations

from switchboard_shared.contracts.chat import (
    InboundMessage,
    OperatorMessage,
    OwnerChange,
    StatusChange,
    TurnResult,
)
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.http_client import Downstream

# A turn may run retrieval and an LLM; give it longer than a plain call.
INBOUND_TIMEOUT = 120.0


class ChatClient:
    def __init__(self, downstream: Downstream) -> None:
        self.downstream = downstream

    @staticmethod
    def _headers(tenant_id: str) -> dict[str, str]:
        return {TENANT_HEADER: tenant_id}

    async def inbound(self, *, tenant_id: str, message: InboundMessage) -> TurnResult:
        # Safe to retry: chat deduplicates on the message's idempotency key.
        payload = await self.downstream.json_request(
            "POST",
            "/internal/v1/inbound",
            json=message.model_dump(mode="json"),
            headers=self._headers(tenant_id),
            idempotent=True,
            timeout=INBOUND_TIMEOUT,
        )
        return TurnResult.model_validate(payload)

    async def operator_message(
        self, *, tenant_id: str, conversation_id: str, message: OperatorMessage
    ) -> str | None:
        """Store an operator message in the conversation; returns chat's message id."""
        payload = await self.downstream.json_request(
            "POST",
            f"/internal/v1/conversations/{conversation_id}/operator-messages",
            json=message.model_dump(mode="json"),
            headers=self._headers(tenant_id),
            idempotent=message.idempotency_key is not None,
        )
        message_id = payload.get("id") if isinstance(payload, dict) else None
        return str(message_id) if message_id is not None else None

    async def set_owner(
        self, *, tenant_id: str, conversation_id: str, change: OwnerChange, timeout: float | None = None
    ) -> None:
        await self.downstream.json_request(
            "PUT",
            f"/internal/v1/conversations/{conversation_id}/owner",
            json=change.model_dump(mode="json"),
            headers=self._headers(tenant_id),
            timeout=timeout,
        )

    async def set_status(self, *, tenant_id: str, conversation_id: str, change: StatusChange) -> None:
        await self.downstream.json_request(
            "PUT",
            f"/internal/v1/conversations/{conversation_id}/status",
            json=change.model_dump(mode="json"),
            headers=self._headers(tenant_id),
        )
