"""Unicode-aware tokenisation for BM25: per-language Snowball stemming (Russian, English). A text's language
is ``switchboard_shared.language.text_language``, the fleet's one rule.

Every word is stemmed by the stemmer of its own script (Cyrillic → Russian, Latin → English), so mixed
Russian/English text, product names inside Russian sentences included, is stemmed correctly.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

from switchboard_shared.folding import fold

# A word keeps its combining marks: text from PDFs and macOS carries "й" and "ё" decomposed (NFD); ``fold``
# composes them.
_LETTERS = r"(?:[^\W_][\u0300-\u036f]*)+"
WORD_RE = re.compile(rf"{_LETTERS}(?:['’]{_LETTERS})?", re.UNICODE)
CYRILLIC_RE = re.compile(r"[\u0400-\u04FF]")
STOPWORDS = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_RUSSIAN)
SUPPORTED_LANGUAGES = ("en", "ru")

_local = threading.local()


def _stemmers() -> dict[str, Stemmer._Stemmer]:
    # PyStemmer objects are not thread-safe: one set per thread.
    stemmers: dict[str, Stemmer._Stemmer] | None = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = {"ru": Stemmer.Stemmer("russian"), "en": Stemmer.Stemmer("english")}
        _local.stemmers = stemmers
    return stemmers


@lru_cache(maxsize=200_000)
def stem_word(word: str) -> str:
    """The stem of one lower-case word, by the stemmer of its script."""
    stemmers = _stemmers()
    language = "ru" if CYRILLIC_RE.search(word) else "en"
    stemmed: str = stemmers[language].stemWord(word)
    return stemmed


def words(text: str) -> list[str]:
    return [fold(w) for w in WORD_RE.findall(text)]


def content_words(text: str) -> list[str]:
    """The words BM25 indexes: lower-cased, stop words and single letters dropped."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def tokenize(text: str) -> list[str]:
    """``content_words``, each stemmed by its script's stemmer."""
    return [stem_word(w) for w in content_words(text)]


@lru_cache(maxsize=4096)
def word_stems(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, stem) of every word of a text; kept for recent texts (search highlights the same
    chunks again and again)."""
    return tuple((m.start(), m.end(), stem_word(fold(m.group()))) for m in WORD_RE.finditer(text))


def highlight(text: str, query: str, *, width: int = 240, marker: str = "**") -> str:
    """The window of ``text`` with the most query terms (matched by stem), the terms wrapped in ``marker``."""
    terms = set(tokenize(query))
    spans = [(start, end) for start, end, stem in word_stems(text) if stem in terms]
    if not spans:
        snippet = text[:width]
        return snippet + ("…" if len(text) > width else "")
    best_start, best_count = spans[0][0], 0
    for i, (start, _) in enumerate(spans):
        count = sum(1 for s, e in spans[i:] if e - start <= width)
        if count > best_count:
            best_start, best_count = start, count
    window_start = max(0, best_start - width // 4)
    # Start at a word boundary.
    if window_start > 0:
        space = text.rfind(" ", 0, window_start)
        window_start = space + 1 if space >= 0 and best_start - space < width // 2 else window_start
    window_end = min(len(text), window_start + width)
    parts = []
    cursor = window_start
    for start, end in spans:
        if start < window_start or end > window_end:
            continue
        parts.append(text[cursor:start])
        parts.append(f"{marker}{text[start:end]}{marker}")
        cursor = end
    parts.append(text[cursor:window_end])
    snippet = "".join(parts).replace("\n", " ").strip()
    return ("…" if window_start > 0 else "") + snippet + ("…" if window_end < len(text) else "")
