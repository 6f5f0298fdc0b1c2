"""The turn: one customer message in, the assistant's answer (or a relay to a human) out, as typed packets.

Order of work, under the conversation's lock (so messages of one conversation never interleave, across
replicas): store the customer message and load the recent window (``intake``) → if a human owns the
conversation, relay and stop (``handoff``) → escalate at once on an explicit request, frustration or a
tenant rule → run an action the customer confirmed (``actions``) → else answer (``answer``: standalone
query, search, provider chain, tools) → store the answer and emit events (``reply``). The packets go to the
caller through a ``TurnHandle`` (``stream``).
"""

from __future__ import annotations

import time

import structlog

from switchboard_chat.conversations.lock import ConversationLock
from switchboard_chat.runtime import Runtime
from switchboard_chat.turn import escalation
from switchboard_chat.turn.actions import run_confirmed_action
from switchboard_chat.turn.answer import answer
from switchboard_chat.turn.confirmation import is_confirmation
from switchboard_chat.turn.handoff import hand_off_now, relay
from switchboard_chat.turn.intake import Prepared, TurnInput, ms_since, prepare
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.chat import DonePacket, ErrorPacket, LatencySplit, Owner, TurnResult

log = structlog.get_logger(__name__)


async def start_turn(runtime: Runtime, turn: TurnInput) -> TurnHandle:
    """Validate, take the lock and store the customer message; then run the rest in a task."""
    started = time.perf_counter()
    lock = runtime.lock(turn.conversation_id)
    await lock.acquire()
    handle = TurnHandle()
    try:
        prepared = await prepare(runtime, turn, started)
    except BaseException:
        await lock.release()
        raise
    if isinstance(prepared, TurnResult):
        await lock.release()
        handle.put(DonePacket(result=prepared))
        handle.close()
        return handle
    runtime.spawn(_run(runtime, prepared, handle, lock), name=f"turn-{turn.conversation_id}")
    return handle


async def _run(runtime: Runtime, prepared: Prepared, handle: TurnHandle, lock: ConversationLock) -> None:
    try:
        if prepared.owner == Owner.HUMAN.value:
            await relay(runtime, prepared)
            handle.put(
                DonePacket(
                    result=TurnResult(
                        conversation_id=prepared.conversation_id,
                        user_message=prepared.user_message,
                        owner=Owner.HUMAN,
                        latency=LatencySplit(total_ms=ms_since(prepared.started)),
                    )
                )
            )
            return
        reason = escalation.before_answer(prepared.text, prepared.assistant.escalation)
        if reason is not None:
            await hand_off_now(runtime, prepared, handle, reason)
            return
        if prepared.pending_action is not None and is_confirmation(prepared.text):
            if await run_confirmed_action(runtime, prepared, handle, prepared.pending_action):
                return
        await answer(runtime, prepared, handle)
    except Exception as exc:
        log.error("turn_failed", conversation_id=prepared.conversation_id, exc_info=exc)
        handle.put(
            ErrorPacket(code="internal_error", message="The answer could not be completed; try again.")
        )
    finally:
        await lock.release()
        handle.close()
