"""The search query of a turn: a follow-up such as "and how much is it?" borrows the words of the
conversation's earlier user turns, so retrieval gets a standalone query (offline, no model needed)."""

from __future__ import annotations

import re

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.extractive import terms

FOLLOW_UP = re.compile(
    r"\b(it|its|that|this|those|these|they|them|there|same|also|what about|and|how about|more)\b"
    r"|(?:^|\s)(это|этот|эта|этом|его|её|ее|их|там|тоже|так|а если|а как|а что|подробнее)(?:\s|$|[?,.!])",
    re.IGNORECASE,
)
# A question of this many content words or fewer rarely names its topic ("and on the paid plan?").
SHORT_QUESTION_TERMS = 3
# How many earlier user turns a chain of follow-ups may borrow from.
MAX_TURNS_BORROWED = 2


def is_follow_up(question: str) -> bool:
    return len(terms(question)) <= SHORT_QUESTION_TERMS or FOLLOW_UP.search(question) is not None


def search_query(question: str, history: list[WindowMessage]) -> str:
    """A standalone search query: a short or pronoun-led follow-up borrows the content words of the user
    turns before it, newest first, going back past the previous turn only while that one was a follow-up
    too ("How do I add a domain?" → "And the certificate?" → "How long does it take?")."""
    if not is_follow_up(question):
        return question
    earlier = [m.text for m in reversed(history) if m.role == "user"][:MAX_TURNS_BORROWED]
    lowered = question.lower()
    borrowed: list[str] = []
    for previous in earlier:
        for word in content_words(previous):
            if word.lower() not in lowered and word not in borrowed:
                borrowed.append(word)
        if not is_follow_up(previous):
            break
    if not borrowed:
        return question
    return f"{question} {' '.join(borrowed)}"[:1000]


def content_words(value: str) -> list[str]:
    keep = set(terms(value))
    return [w for w in re.findall(r"\w+", value) if (w.lower()[:5] if len(w) > 5 else w.lower()) in keep]
