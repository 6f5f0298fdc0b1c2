"""The language of a customer's text, decided one way everywhere (chat answers in it, the evaluation checks
answers against it): Russian when a large share of the letters is Cyrillic, English otherwise."""

from __future__ import annotations

import re

# Passages quoted verbatim in another language than the customer's (« … », “ … ”) are the source's words,
# not the assistant's: the language of an answer is that of the text around them.
QUOTED = re.compile(r"«[^»]*»|“[^”]*”")
CYRILLIC_SHARE = 0.3


def detect_language(message: str, allowed: list[str] | None = None) -> str:
    """``ru`` when more than 30% of the letters are Cyrillic, ``en`` otherwise; kept within ``allowed``."""
    letters = [ch for ch in message if ch.isalpha()]
    cyrillic = sum(1 for ch in letters if "\u0400" <= ch <= "\u04ff")
    language = "ru" if letters and cyrillic / len(letters) > CYRILLIC_SHARE else "en"
    if allowed and language not in allowed:
        return allowed[0]
    return language


def answer_language(answer: str) -> str:
    """The language an answer speaks in: its own words, leaving out quotations of the sources."""
    own = QUOTED.sub(" ", answer)
    return detect_language(own if any(ch.isalpha() for ch in own) else answer)
