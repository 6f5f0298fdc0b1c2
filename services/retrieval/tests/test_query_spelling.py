"""Spelling correction of queries against a knowledge base's own words, and the weighted fusion it feeds."""

from __future__ import annotations

import pytest

from switchboard_retrieval.index.bm25 import Bm25Index
from switchboard_retrieval.index.hybrid import fuse_rankings
from switchboard_retrieval.index.spelling import Speller, word_counts
from switchboard_retrieval.index.text import tokenize

PAGES = [
    "To cancel a build that is already running, open the build page and press Cancel build.",
    "Builds run in a container; the build page shows every command and its output.",
    "Pick a version of Python for the build with build.tools.python in the configuration file.",
    "Оплатить заказ можно картой или частями: «Сплит на 4». Постамат хранит заказ 3 дня.",
    "Бонусные баллы приходят через 14 дней. Баллами можно оплатить до 30% заказа.",
]


def speller() -> Speller:
    return Speller([dict(word_counts(PAGES))], [{t for page in PAGES for t in tokenize(page)}])


@pytest.mark.parametrize(
    ("query", "corrected"),
    [
        ("how do i cancle a bulid thats allready runnin", "how do i cancel a build that already running"),
        ("wich python versoin", "wich python version"),
        ("можно оплотить частями?", "можно оплатить частями?"),
        ("постомат не открылся", "постамат не открылся"),
        ("когда придут балы", "когда придут баллы"),
    ],
)
def test_misspelt_words_are_corrected_to_the_knowledge_bases_words(query: str, corrected: str) -> None:
    assert speller().correct(query) == corrected


@pytest.mark.parametrize(
    "query",
    [
        "cancelled builds",  # an inflection: its stem is known
        "kick the build",  # a consonant for another makes another word ("pick")
        "Builds went wrong",  # a vowel for a vowel in a short word ("want")
        "Где мой заказ?",  # too short or unknown and nothing one slip away
        "docs on GitHub v1.2",  # not a plain word
    ],
)
def test_known_inflected_short_and_unrelated_words_are_kept(query: str) -> None:
    assert speller().correct(query) == query


def test_words_of_the_language_the_pages_do_not_use_are_not_taken_for_typos() -> None:
    pages = [*PAGES, "Apply the CNAME record, then watch the status page. Оплату может вернуть только банк."]
    checker = Speller([dict(word_counts(pages))], [{t for page in pages for t in tokenize(page)}])
    # Each is one slip from a word of the pages ("apply", "cname", "status", "может").
    query = "Apple Pay came back with stats, можете помочь?"
    assert checker.correct(query) == query
    assert checker.correct("the cnmae recrod") == "the cname record"


def test_without_a_vocabulary_the_query_is_left_alone() -> None:
    assert Speller([]).correct("cancle bulid") == "cancle bulid"


def test_the_index_keeps_its_vocabulary_across_save_and_load(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path)) / "kb"
    index = Bm25Index.build(3, [(f"c{i}", "s", text) for i, text in enumerate(PAGES)])
    index.save(directory)
    loaded = Bm25Index.load(directory)
    assert loaded is not None and loaded.words == index.words and loaded.words["build"] >= 4
    assert "cancel" in loaded.stems
    # An index saved before the vocabulary was kept is rebuilt from SQL rather than used without it.
    (directory / "words.json").unlink()
    assert Bm25Index.load(directory) is None
    assert loaded.search("how do I cancel a build", 2)[0][0] == "c0"


def test_fusion_weights_scale_each_ranking() -> None:
    vector = [("a", 0.9), ("b", 0.8)]
    bm25 = [("b", 12.0), ("c", 5.0)]
    assert [h.chunk_id for h in fuse_rankings(vector, bm25, k=60, bm25_weight=0.0)] == ["a", "b", "c"]
    weighted = fuse_rankings(vector, bm25, k=60, vector_weight=1.0, bm25_weight=0.5)
    assert [h.chunk_id for h in weighted] == ["b", "a", "c"]
    assert weighted[0].score == pytest.approx(1 / 62 + 0.5 / 61)
