"""When a conversation should go to a human: explicit requests, frustration, and the tenant's rules.

A handoff word counts as a request when the message is short or also says "talk / connect / want …":
"human" alone escalates, "how do I give a human-readable name to my build agent?" does not.
"""

from __future__ import annotations

import re
from functools import lru_cache

from switchboard_shared.contracts.chat import EscalationSettings

REQUEST_CUES = re.compile(
    r"\b(talk|speak|connect|transfer|want|need|get|give|call|real|live|switch|escalate)\b"
    r"|(позов|соедин|переключ|хочу|нужен|нужна|дайте|свяжите|поговор|живой|позвать)",
    re.IGNORECASE,
)
SHORT_MESSAGE_WORDS = 6


@lru_cache(maxsize=512)
def _phrase(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase.lower()))


def _matches(message: str, phrases: dict[str, list[str]]) -> str | None:
    lowered = message.lower()
    for words in phrases.values():
        for phrase in words:
            if phrase and _phrase(phrase).search(lowered):
                return phrase
    return None


def explicit_request(message: str, settings: EscalationSettings) -> str | None:
    phrase = _matches(message, settings.handoff_phrases)
    if phrase is None:
        return None
    if len(message.split()) <= SHORT_MESSAGE_WORDS or REQUEST_CUES.search(message):
        return f"customer asked for a human ({phrase!r})"
    return None


def frustration(message: str, settings: EscalationSettings) -> str | None:
    if not settings.escalate_on_frustration:
        return None
    phrase = _matches(message, settings.frustration_phrases)
    if phrase is not None:
        return f"frustration ({phrase!r})"
    letters = [ch for ch in message if ch.isalpha()]
    if len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) > 0.8 and "!" in message:
        return "frustration (shouting)"
    return None


def tenant_rule(message: str, settings: EscalationSettings) -> str | None:
    for rule in settings.rules:
        try:
            if re.search(rule.pattern, message, re.IGNORECASE):
                return f"rule {rule.name}" + (f": {rule.reason}" if rule.reason else "")
        except re.error:
            continue
    return None


def before_answer(message: str, settings: EscalationSettings) -> str | None:
    """A reason to hand off before generating anything, or None."""
    return (
        explicit_request(message, settings)
        or tenant_rule(message, settings)
        or frustration(message, settings)
    )
