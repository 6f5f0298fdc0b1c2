"""The customer's "yes" to an action the assistant proposed (a tool with side effects, such as opening a
ticket): the only thing that runs such a tool. A short reply that agrees and does not refuse, in English or
Russian; anything else leaves the action undone."""

from __future__ import annotations

import re

AGREE = {
    "en": (
        "yes",
        "yeah",
        "yep",
        "sure",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "go ahead",
        "please do",
        "do it",
    ),
    "ru": ("да", "ага", "конечно", "подтверждаю", "давай", "давайте", "хорошо", "ок", "согласен", "согласна"),
}
REFUSE = {
    "en": ("no", "not", "don't", "dont", "nope", "cancel", "wait", "stop"),
    "ru": ("нет", "не", "отмена", "стоп", "подожди", "подождите"),
}
MAX_WORDS = 6
WORD = re.compile(r"[\w']+", re.UNICODE)


def _has(words: list[str], phrases: tuple[str, ...]) -> bool:
    joined = f" {' '.join(words)} "
    return any(f" {phrase} " in joined for phrase in phrases)


def is_confirmation(text: str) -> bool:
    words = [word.lower() for word in WORD.findall(text)]
    if not words or len(words) > MAX_WORDS:
        return False
    if any(_has(words, phrases) for phrases in REFUSE.values()):
        return False
    return any(_has(words, phrases) for phrases in AGREE.values())
