"""The fleet's one token estimate: what a turn costs a tenant's daily token budget and what the
OpenAI-compatible API reports as usage, and how much history fits a model's prompt.

About four characters a token for Latin text and two for Cyrillic (BPE tokenizers split Russian words
finer); no tokenizer is downloaded, and every provider is counted the same way.
"""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """Estimated tokens of a text (0 for an empty one, at least 1 otherwise)."""
    if not text:
        return 0
    cyrillic = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff")
    return max(1, -(-(len(text) - cyrillic) // 4) + -(-cyrillic // 2))
