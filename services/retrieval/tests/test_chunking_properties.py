"""Properties of chunking: no text of a section is lost, none is repeated beyond the configured overlap,
chunks keep the order of the text, and chunk ids are stable and unique."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_retrieval.ingestion.chunking import Chunker
from switchboard_retrieval.ingestion.parsing import ParsedDocument, Section

PROPERTY = settings(max_examples=150, deadline=None)

WORD = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщъыьэюя0123456789"),
    min_size=1,
    max_size=30,
)
SEPARATOR = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", ", ", "? ", "; ", "! "])


@st.composite
def section_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(WORD, SEPARATOR), min_size=1, max_size=120))
    return "".join(word + separator for word, separator in parts)


@st.composite
def documents(draw: st.DrawFn) -> ParsedDocument:
    """Sections with distinct heading paths, so each chunk can be traced back to its section."""
    count = draw(st.integers(1, 5))
    sections = [
        Section(
            heading_path=[f"Part {i}", *draw(st.lists(st.text(min_size=1, max_size=12), max_size=2))],
            text=draw(section_texts()),
            atomic=draw(st.booleans()),
        )
        for i in range(count)
    ]
    return ParsedDocument(title=draw(st.text(max_size=20)), sections=sections)


SIZES = st.tuples(st.integers(100, 400), st.integers(0, 120))


def positions(text: str, pieces: list[str]) -> list[int]:
    """Where each piece sits in ``text``, searching forward from the previous piece's start."""
    found: list[int] = []
    cursor = 0
    for piece in pieces:
        at = text.find(piece, cursor)
        assert at >= 0, (piece, text[cursor : cursor + 200])
        found.append(at)
        cursor = at + 1
    return found


@PROPERTY
@given(document=documents(), sizes=SIZES)
def test_every_non_blank_character_of_a_section_is_in_a_chunk_in_order(
    document: ParsedDocument, sizes: tuple[int, int]
) -> None:
    size, overlap = sizes
    chunks = Chunker(chunk_size=size, chunk_overlap=overlap).chunk(
        document, source_id="s", document_uri="doc.md", url=None
    )
    for section in document.sections:
        own = [c.text for c in chunks if c.heading_path == section.heading_path]
        starts = positions(section.text, own)
        covered = [False] * len(section.text)
        for start, piece in zip(starts, own, strict=True):
            covered[start : start + len(piece)] = [True] * len(piece)
        lost = [ch for ch, hit in zip(section.text, covered, strict=True) if not hit and not ch.isspace()]
        assert not lost, "".join(lost)
        limit = min(overlap, size // 2)
        for index in range(1, len(own)):
            previous_end = starts[index - 1] + len(own[index - 1])
            assert starts[index] > starts[index - 1]
            assert previous_end - starts[index] <= limit, (own[index - 1], own[index])


@PROPERTY
@given(document=documents(), sizes=SIZES)
def test_chunk_ids_are_stable_unique_and_ordinals_dense(
    document: ParsedDocument, sizes: tuple[int, int]
) -> None:
    size, overlap = sizes
    chunker = Chunker(chunk_size=size, chunk_overlap=overlap)
    first = chunker.chunk(document, source_id="s", document_uri="doc.md", url="https://docs.example/doc")
    again = Chunker(chunk_size=size, chunk_overlap=overlap).chunk(
        document, source_id="s", document_uri="doc.md", url="https://docs.example/doc"
    )
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert [c.ordinal for c in first] == list(range(len(first)))
    assert all(re.fullmatch(r"[0-9a-f]{40}", c.id) for c in first)
    other = chunker.chunk(document, source_id="s", document_uri="other.md", url=None)
    assert not {c.id for c in first} & {c.id for c in other}


@PROPERTY
@given(document=documents(), extra=section_texts(), sizes=SIZES)
def test_a_new_section_keeps_the_ids_of_the_others(
    document: ParsedDocument, extra: str, sizes: tuple[int, int]
) -> None:
    size, overlap = sizes
    chunker = Chunker(chunk_size=size, chunk_overlap=overlap)
    before = chunker.chunk(document, source_id="s", document_uri="doc.md", url=None)
    grown = ParsedDocument(
        document.title, [*document.sections, Section(heading_path=["Appendix \u2116 1"], text=extra)]
    )
    after = chunker.chunk(grown, source_id="s", document_uri="doc.md", url=None)
    assert [c.id for c in after[: len(before)]] == [c.id for c in before]
