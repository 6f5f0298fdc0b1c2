"""The questions a customer asked in one message. "Сколько стоит доставка курьером и можно ли платить
биткоинами?" asks two things: retrieval searches each part as well as the whole, so both have passages, and
the extractive answerer reads each part on its own. One rule for both, so they split a message alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable

QUESTION_WORD = (
    r"(?:(?:how|what|when|where|which|who|why|can|could|do|does|is|are|will|would|should|if)\b"
    r"|(?:что|как|куда|где|когда|сколько|какой|какая|какие|можно|нужно|если|почему|зачем)\b|\w+\s+ли\b)"
)
# Where a question that asks two things splits: at a question mark followed by another question (one that
# opens with a question word or ends with its own question mark: not the earlier turn's words a follow-up's
# search query borrows), or at "and"/"и"/"а" before a question word (or a Russian "… ли" clause).
CLAUSE = re.compile(
    rf"\?\s+(?={QUESTION_WORD}|[^?]+\?)|,?\s+(?:and|и|а)\s+(?={QUESTION_WORD})",
    re.IGNORECASE,
)
MAX_PARTS = 2
# A part needs this many content words to be a question of its own ("and how?" is not).
MIN_PART_TERMS = 2


def question_parts(question: str, terms: Callable[[str], list[str]]) -> list[str]:
    """The questions a message asks, when there are two (else none); ``terms`` are the caller's content
    words of a text (its stop words dropped), which decide whether a piece says enough to stand alone."""
    parts = [part.strip(" ,?") for part in CLAUSE.split(question)]
    parts = [part for part in parts if len(terms(part)) >= MIN_PART_TERMS]
    return parts[:MAX_PARTS] if len(parts) >= 2 else []
