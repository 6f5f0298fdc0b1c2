"""Citations: the passages an answer marks with ``[n]``, in order of first mention."""

from __future__ import annotations

import re

from switchboard_chat.providers.base import Passage
from switchboard_shared.contracts.chat import Citation

# ASCII digits only, as the widget links them: "[٣]" is prose there, so it must not become a citation.
CITATION_MARK = re.compile(r"\[([0-9]{1,2})\]")


def cited(answer: str, passages: list[Passage]) -> list[Citation]:
    """Citations for the passages the answer actually marks, in order of first mention."""
    by_index = {p.index: p for p in passages}
    seen: list[int] = []
    for match in CITATION_MARK.finditer(answer):
        index = int(match.group(1))
        if index in by_index and index not in seen:
            seen.append(index)
    return [
        Citation(
            index=i,
            chunk_id=by_index[i].hit.chunk_id,
            document_id=by_index[i].hit.document_id,
            title=by_index[i].hit.title,
            url=by_index[i].hit.url,
            snippet=by_index[i].hit.snippet[:300],
        )
        for i in seen
    ]
