"""How a word is compared everywhere in the fleet (search's keyword index, the answerer's shared words,
analytics' question keys): composed, lower-cased, ё read as е, stress accents dropped.

Text from PDFs and macOS carries "й" and "ё" decomposed (NFD); composing first keeps them one letter, and
customers type "е" for "ё" as often as not.
"""

from __future__ import annotations

import re
import unicodedata

COMBINING = re.compile(r"[\u0300-\u036f]")


def fold(text: str) -> str:
    """Composed (NFC), lower-cased, ё as е, and without marks that compose with nothing (stress accents)."""
    return COMBINING.sub("", unicodedata.normalize("NFC", text).lower().replace("ё", "е"))
