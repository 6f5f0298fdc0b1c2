"""Spelling correction of a query against the words of its knowledge base.

Customers misspell ("cancle a bulid", "оплотить частями"); a stemmer does not repair that and BM25 then
misses the word. A query word that never occurs in the knowledge base is replaced by the most frequent word
of the knowledge base one typing slip away (the candidate generation of Norvig's corrector, narrowed to
the slips people make). A word whose stem the knowledge base knows is an inflection, not a typo, and is
kept; so is a word of the language the knowledge base happens not to use ("came", "Apple", "stats",
"можете"), which was otherwise "corrected" to a word of the pages one slip away ("cname", "apply", "status",
"может") and searched and answered as that. Only unknown words are looked at, so a query spelt right costs
one dictionary lookup per word.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from functools import cache

from spellchecker import SpellChecker

from switchboard_retrieval.index.text import CYRILLIC_RE, WORD_RE, stem_word, words
from switchboard_shared.folding import fold

LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщъыьэюя"
VOWELS = frozenset("aeiouyаеиоуыэюя")
# Shorter words have too many neighbours one edit away to guess which one was meant.
MIN_LENGTH = 4
SIMPLE_WORD = re.compile(r"^[a-zа-я]+$")


def _edits(word: str) -> set[str]:
    """Words one typing slip away: a letter dropped, doubled or added, two letters swapped, or one vowel
    written for another (the commonest misspelling, "оплотить", "seperate"). The first letter is kept and a
    consonant is never swapped for another letter: those make different words ("kick"/"pick", "марта"/"карта")
    far more often than they fix a typo."""
    alphabet = CYRILLIC if CYRILLIC_RE.search(word) else LATIN
    vowels = [c for c in alphabet if c in VOWELS]
    splits = [(word[:i], word[i:]) for i in range(1, len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    swaps = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    # A vowel for a vowel in a short word is more often another word ("went"/"want") than a slip.
    replaces = (
        [a + c + b[1:] for a, b in splits if b and b[0] in VOWELS for c in vowels]
        if len(word) > MIN_LENGTH
        else []
    )
    inserts = [a + c + b for a, b in splits for c in alphabet]
    return {edit for edit in deletes + swaps + replaces + inserts if len(edit) >= MIN_LENGTH}


# The languages whose words are never taken for typos: the customers' (English and Russian).
LANGUAGES = ("en", "ru")


@cache
def language_words() -> frozenset[str]:
    """The words of ``LANGUAGES`` that could be taken for a typo (folded, ``MIN_LENGTH`` letters or more),
    from the word lists pyspellchecker ships inside its wheel: about 145,000 words, read once per process
    (0.25 s of CPU, about 13 MB)."""
    folded = (
        fold(word) for language in LANGUAGES for word in SpellChecker(language=language).word_frequency.keys()
    )
    return frozenset(word for word in folded if len(word) >= MIN_LENGTH and SIMPLE_WORD.match(word))


def word_counts(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(words(text))
    return counts


class Speller:
    """Corrects the unknown words of a query to the vocabulary of the knowledge bases searched."""

    def __init__(
        self, vocabularies: Sequence[Mapping[str, int]], stems: Sequence[Container[str]] = ()
    ) -> None:
        self.vocabularies = [v for v in vocabularies if v]
        self.stems = list(stems)

    def _count(self, word: str) -> int:
        return sum(vocabulary.get(word, 0) for vocabulary in self.vocabularies)

    def correct_word(self, word: str) -> str | None:
        """The replacement of ``word`` (lower case), or None when it is known or no close word exists."""
        if len(word) < MIN_LENGTH or not SIMPLE_WORD.match(word) or self._count(word):
            return None
        if word in language_words():
            return None  # a word of the language, only not one of the pages
        stem = stem_word(word)
        if any(stem in known for known in self.stems):
            return None
        best: tuple[int, str] | None = None
        for candidate in _edits(word):
            count = self._count(candidate)
            if count and (best is None or (count, candidate) > best):
                best = (count, candidate)
        return best[1] if best else None

    def correct(self, query: str) -> str:
        """``query`` with each unknown word replaced by its correction (the rest of the text untouched)."""

        def replace(match: re.Match[str]) -> str:
            word = match.group()
            corrected = self.correct_word(fold(word))
            return corrected if corrected is not None else word

        if not self.vocabularies:
            return query
        return WORD_RE.sub(replace, query)
