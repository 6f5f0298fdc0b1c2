"""The tools of a turn: the context they run in (who the customer is, what they may use), and the action
the previous answer proposed, run by the turn itself once the customer confirms it."""

from __future__ import annotations

import time

from switchboard_chat.providers.texts import text
from switchboard_chat.runtime import Runtime
from switchboard_chat.tools.service import PendingAction, ToolContext, build_tools, transcript_of
from switchboard_chat.turn.intake import Prepared, ms_since
from switchboard_chat.turn.reply import reply_with_system_text
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import ToolCallPacket


def tool_context(runtime: Runtime, prepared: Prepared) -> ToolContext:
    return ToolContext(
        integrations=runtime.platform.downstream("integrations"),
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        message_id=prepared.user_message.id,
        end_user_id=prepared.end_user_id,
        verified=prepared.verified,
        profile=prepared.profile,
        claimed_email=prepared.claimed_email,
        claimed_crm_id=prepared.claimed_crm_id,
        transcript=transcript_of([(m.role, m.text) for m in prepared.context if m.role != "system"]),
        timeout=runtime.settings.integrations_timeout_seconds,
    )


def emit_tool_called(runtime: Runtime, prepared: Prepared, tool: str, status: str, *, verified: bool) -> None:
    runtime.platform.analytics.emit(
        EventType.TOOL_CALLED,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        end_user_id=prepared.end_user_id,
        channel=prepared.channel,
        properties={"tool": tool, "status": status, "ok": status == "ok", "verified": verified},
    )


async def run_confirmed_action(
    runtime: Runtime, prepared: Prepared, handle: TurnHandle, action: PendingAction
) -> bool:
    """The customer said yes to the action the previous answer proposed: run it (the turn does, not a
    model) and say how it went. False when the tool is no longer this user's to use (answered normally)."""
    context = tool_context(runtime, prepared)
    enabled: list[str] = [name for name in prepared.assistant.tools if name == action.tool]
    tools = build_tools(context, enabled)
    if not tools:
        return False
    handle.put(ToolCallPacket(name=action.tool, arguments=action.arguments, status="started"))
    started = time.perf_counter()
    outcome = await tools[0].run(action.arguments, confirmed=True)
    status = "ok" if outcome.status == "not_found" else outcome.status
    handle.put(ToolCallPacket(name=action.tool, arguments=action.arguments, status=status))  # type: ignore[arg-type]
    emit_tool_called(runtime, prepared, action.tool, status, verified=True)
    ticket = outcome.data.get("ticket") if outcome.status == "ok" else None
    if isinstance(ticket, dict):
        answer = text(
            prepared.language, "ticket_created", ticket=ticket.get("external_id") or ticket.get("id")
        )
    else:
        answer = text(prepared.language, "tools_down")
    await reply_with_system_text(
        runtime,
        prepared,
        handle,
        answer,
        generation_ms=ms_since(started),
        handoff=None,
        handoff_reason=None,
        meta={"tools": [{"name": action.tool, "status": status}], "confirmed_action": action.tool},
    )
    return True
