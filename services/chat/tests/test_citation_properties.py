"""Properties of citation parsing: the answer's ``[n]`` marks (ASCII digits, as the widget links them) become
citations of exactly the passages they name, once each, in order of first mention; nothing else does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_chat.providers.base import Passage
from switchboard_chat.turn.citations import cited
from switchboard_shared.contracts.retrieval import SearchHit

PROPERTY = settings(max_examples=300, deadline=None)


def passage(index: int) -> Passage:
    hit = SearchHit(
        chunk_id=f"chunk-{index}",
        document_id=f"doc-{index}",
        kb_id="kb",
        source_id="src",
        title=f"Title {index}",
        url=f"https://docs.example/{index}",
        text="Passage text. " * 40,
        snippet="Passage text. " * 40,
        score=1.0 / index,
    )
    return Passage(index=index, hit=hit)


# Answer text around the marks: any text without ASCII square brackets (a bracket would make its own mark).
prose = st.text(st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)), max_size=30)


@PROPERTY
@given(
    parts=st.lists(st.tuples(prose, st.integers(0, 120)), max_size=15),
    tail=prose,
    available=st.integers(0, 12),
)
def test_marks_cite_the_named_passages_once_in_order_of_first_mention(
    parts: list[tuple[str, int]], tail: str, available: int
) -> None:
    passages = [passage(i) for i in range(1, available + 1)]
    answer = "".join(f"{text}[{number}]" for text, number in parts) + tail
    expected: list[int] = []
    for _, number in parts:
        if 1 <= number <= available and number < 100 and number not in expected:
            expected.append(number)
    citations = cited(answer, passages)
    assert [c.index for c in citations] == expected
    for citation in citations:
        source = passages[citation.index - 1].hit
        assert (citation.chunk_id, citation.document_id, citation.url) == (
            source.chunk_id,
            source.document_id,
            source.url,
        )
        assert len(citation.snippet) <= 300


@PROPERTY
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
    digit=st.characters(whitelist_categories=("Nd",)).filter(lambda ch: ch not in "0123456789"),
)
def test_only_ascii_bracketed_numbers_are_marks(text: str, digit: str) -> None:
    passages = [passage(i) for i in range(1, 10)]
    # Digits of other scripts, full-width brackets and unclosed marks are prose, as the widget shows them.
    for lookalike in (f"[{digit}]", "［1］", "[1", "1]", "[ 1]", "[-1]", "[1.5]", "[+2]"):
        assert cited(text.replace("[", "(").replace("]", ")") + lookalike, passages) == []
