"""The prompt of a turn: persona, rules, numbered passages and a token-budgeted history."""

from __future__ import annotations

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.base import Passage
from switchboard_shared.contracts.chat import AssistantSettings

LANGUAGE_NAMES = {"en": "English", "ru": "Russian"}
PASSAGE_CHARS = 1500


def estimate_tokens(value: str) -> int:
    """About four characters a token for English, fewer for Cyrillic; no tokenizer download needed."""
    cyrillic = sum(1 for ch in value if "\u0400" <= ch <= "\u04ff")
    return max(1, (len(value) - cyrillic) // 4 + cyrillic // 2)


def budget_history(window: list[WindowMessage], budget: int) -> list[tuple[str, str]]:
    """The newest user/assistant turns that fit the budget, oldest first."""
    picked: list[tuple[str, str]] = []
    used = 0
    for message in reversed(window):
        if message.role not in ("user", "assistant", "operator"):
            continue
        cost = estimate_tokens(message.text) + 4
        if used + cost > budget:
            break
        used += cost
        picked.append(("user" if message.role == "user" else "assistant", message.text))
    picked.reverse()
    return picked


def system_prompt(
    assistant: AssistantSettings,
    *,
    language: str,
    passages: list[Passage],
    kb_unavailable: bool,
    tools_unavailable: bool,
    verified: bool,
) -> str:
    lines = [
        f"You are {assistant.name}, a customer support assistant.",
        assistant.instructions.strip(),
        f"Answer in {LANGUAGE_NAMES.get(language, language)}.",
        "Answer ONLY from the numbered passages below. Cite the passages you use as [1], [2] right after the "
        "sentence that uses them. If the passages do not contain the answer, say that you do not know and "
        "offer to connect the customer with a human. Never invent facts, prices, links or policies.",
    ]
    if kb_unavailable:
        lines.append(
            "The knowledge base is unavailable right now: tell the customer you cannot check the documentation "
            "at the moment and offer a human."
        )
    if tools_unavailable:
        lines.append(
            "The account and order systems are unavailable: if the customer asks about their account or an "
            "order, tell them you cannot look it up right now."
        )
    elif not verified:
        lines.append(
            "The customer is not signed in: for account or order details ask them to sign in, or offer a human."
        )
    if passages:
        lines.append("Passages:")
        for passage in passages:
            hit = passage.hit
            title = " › ".join([hit.title, *hit.heading_path]) if hit.heading_path else hit.title
            lines.append(f"[{passage.index}] {title}\n{hit.text[:PASSAGE_CHARS]}")
    else:
        lines.append("Passages: none were found for this question.")
    return "\n\n".join(line for line in lines if line)
