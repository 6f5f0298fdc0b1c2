"""The fleet's one token estimate, and a turn's usage built on it."""

from __future__ import annotations

from switchboard_shared.contracts.chat import Message, Owner, Role, TurnResult, TurnUsage
from switchboard_shared.tokens import estimate_tokens


def test_four_latin_or_two_cyrillic_characters_a_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert estimate_tokens("привет") == 3  # six Cyrillic letters
    assert estimate_tokens("ok да") == 2  # "ok " (three characters) and "да" (two Cyrillic), rounded up


def test_a_result_without_usage_gets_it_from_its_message_and_answer() -> None:
    def message(role: Role, text: str) -> Message:
        return Message(
            id=role.value, conversation_id="c", role=role, text=text, created_at="2026-12-06T00:00:00Z"
        )

    result = TurnResult(
        conversation_id="c",
        user_message=message(Role.USER, "Сколько стоит доставка?"),
        reply=message(Role.ASSISTANT, "Courier delivery costs 349 ₽ [1]."),
        owner=Owner.BOT,
    )
    assert result.usage == TurnUsage.of("Сколько стоит доставка?", "Courier delivery costs 349 ₽ [1].")
    assert result.usage.prompt_tokens == estimate_tokens("Сколько стоит доставка?")
    handed_off = TurnResult(
        conversation_id="c", user_message=message(Role.USER, "human please"), owner=Owner.HUMAN
    )
    assert handed_off.usage == TurnUsage(prompt_tokens=3, completion_tokens=0, total_tokens=3)
    kept = TurnUsage.of("q", "a", earlier_tokens=10)
    assert TurnResult.model_validate({**result.model_dump(), "usage": kept.model_dump()}).usage == kept
