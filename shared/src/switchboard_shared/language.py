"""The language of a customer's text, decided one way everywhere (chat answers in it, the evaluation checks
answers against it): Russian when a large share of the letters is Cyrillic, English otherwise."""

from __future__ import annotations

import re

# Passages quoted verbatim in another language than the customer's (« … », “ … ”) are the source's words,
# not the assistant's: the language of an answer is that of the text around them.
QUOTED = re.compile(r"«[^»]*»|“[^”]*”")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
CYRILLIC_SHARE = 0.3


def text_language(text: str) -> str | None:
    """``ru`` when more than 30% of the Cyrillic and Latin letters are Cyrillic, ``en`` otherwise; None when
    the text has neither (a number, a code, punctuation). Customers' messages, passages and chunks are all
    judged by this one rule."""
    cyrillic = len(CYRILLIC.findall(text))
    latin = len(LATIN.findall(text))
    if cyrillic + latin == 0:
        return None
    return "ru" if cyrillic > CYRILLIC_SHARE * (cyrillic + latin) else "en"


def detect_language(message: str, allowed: list[str] | None = None) -> str:
    """The language to answer a message in: ``text_language``, English when it tells none; kept within
    ``allowed``."""
    language = text_language(message) or "en"
    if allowed and language not in allowed:
        return allowed[0]
    return language


def answer_language(answer: str) -> str:
    """The language an answer speaks in: its own words, leaving out quotations of the sources."""
    own = QUOTED.sub(" ", answer)
    return detect_language(own if any(ch.isalpha() for ch in own) else answer)
