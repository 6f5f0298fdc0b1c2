"""The search query of a turn: a follow-up such as "and how much is it?" borrows the words of the
conversation's earlier user turns, so retrieval gets a standalone query."""

from __future__ import annotations

import re

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.extractive import terms

FOLLOW_UP = re.compile(
    r"\b(it|its|that|this|those|these|they|them|there|same|also|what about|and|how about|more)\b"
    r"|(?:^|\s)(это|этот|эта|этом|его|её|ее|их|там|тоже|так|а если|а как|а что|подробнее)(?:\s|$|[?,.!])",
    re.IGNORECASE,
)


def search_query(question: str, history: list[WindowMessage]) -> str:
    """A standalone search query: a short or pronoun-led follow-up borrows the previous question's terms."""
    previous = next((m.text for m in reversed(history) if m.role == "user"), None)
    if previous is None:
        return question
    if len(terms(question)) > 2 and not FOLLOW_UP.search(question):
        return question
    borrowed = [t for t in dict.fromkeys(content_words(previous)) if t.lower() not in question.lower()]
    if not borrowed:
        return question
    return f"{question} {' '.join(borrowed)}"[:1000]


def content_words(value: str) -> list[str]:
    keep = set(terms(value))
    return [w for w in re.findall(r"\w+", value) if (w.lower()[:5] if len(w) > 5 else w.lower()) in keep]
