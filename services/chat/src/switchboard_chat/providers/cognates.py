"""Words a Russian question shares with English text across the alphabet: cognates and loanwords
("сертификат" / "certificate", "редирект" / "redirect", "репозитории" / "repository").

Each word of five letters or more that is not a stop word becomes a key: Russian words lose a case ending
and are transliterated, English words lose a plural "-s" and "-tion"/"-sion", then both keep their first
four consonants with the letters that sound alike merged (c before e/i/y is s, other c, k and q are k, z is
s, w is v; h and j are dropped). Crude, and it matches only words that sound alike; it serves where the two
languages share no word at all.
"""

from __future__ import annotations

import re
from functools import lru_cache

from switchboard_chat.providers.stopwords import STOPWORDS
from switchboard_shared.folding import fold

LATIN_WORD = re.compile(r"[a-z]{5,}")
CYRILLIC_WORD = re.compile(r"[а-яё]{5,}")
TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e s s i i k l m n o p r s t u f - s k s s - i - e u a".split(),
        strict=True,
    )
)
# Case and number endings, longest first (only the first that leaves four letters is cut).
ENDINGS = sorted(
    "ами ями ого его ому ему ыми ими ой ей ий ый ая яя ое ее ую юю ых их ом ем ам ям ах ях ов ев ию ия ии "
    "ие ья ье ью а я у ю о е ы и ь й".split(),
    key=len,
    reverse=True,
)
VOWELS = frozenset("aeiouy")
SINGULAR_S = ("ss", "us", "is")  # "access", "status", "analysis" end in -s in the singular
KEY_CONSONANTS = 4
MIN_CONSONANTS = 3
# Passages are knowledge-base chunks and come back turn after turn: what is read of one text alone (its
# sound-alike keys here; its units, their languages and a sentence's content words in the answerer) is
# kept for this many recent texts.
READ_CACHE_SIZE = 4096


@lru_cache(maxsize=READ_CACHE_SIZE)
def cognate_keys(text: str) -> frozenset[str]:
    """The sound-alike keys of a text's Russian and English words (kept for recent texts)."""
    folded = fold(text)
    keys = [latin_key(word) for word in LATIN_WORD.findall(folded) if word not in STOPWORDS]
    keys += [cyrillic_key(word) for word in CYRILLIC_WORD.findall(folded) if word not in STOPWORDS]
    return frozenset(key for key in keys if len(key) >= MIN_CONSONANTS)


def latin_key(word: str) -> str:
    if word.endswith("s") and not word.endswith(SINGULAR_S):
        word = word[:-1]  # "webhooks" keys as "webhook" (Russian plurals lose their ending too)
    word = word.replace("qu", "kv")
    for suffix, keep in (("tion", "t"), ("sion", "s"), ("ion", "")):
        if word.endswith(suffix):
            word = word[: word.rfind(suffix)] + keep
            break
    letters = []
    for i, letter in enumerate(word):
        if letter == "c":
            letters.append("s" if word[i + 1 : i + 2] in ("e", "i", "y") else "k")
        elif letter == "x":
            letters += ["k", "s"]
        elif letter not in "hj":
            letters.append({"q": "k", "z": "s", "w": "v"}.get(letter, letter))
    return skeleton(letters)


def cyrillic_key(word: str) -> str:
    for ending in ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            word = word[: -len(ending)]
            break
    return skeleton([TRANSLIT.get(letter, letter) for letter in word])


def skeleton(letters: list[str]) -> str:
    """The first consonants, a doubled one counted once."""
    out: list[str] = []
    for letter in letters:
        if letter in VOWELS or letter == "-" or (out and out[-1] == letter):
            continue
        out.append(letter)
    return "".join(out[:KEY_CONSONANTS])
