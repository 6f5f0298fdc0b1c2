"""Properties of the language the assistant answers in: Russian text is answered in Russian and English in
English, whatever digits, emoji, punctuation, product names or Unicode form surround the words, and the
answer language is always one the tenant allows."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_shared.language import answer_language, detect_language

LANGUAGES = ["en", "ru"]

PROPERTY = settings(max_examples=300, deadline=None)

russian_words = st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВЁЙЯ", min_size=2, max_size=12)
english_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ", min_size=2, max_size=12)
noise = st.text(alphabet="0123456789 .,!?-+%€$₽#№()«»🙂🚚🎉👍🏽\u200f\u200e\u0301\n", max_size=40)


def sentence(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(words, min_size=1, max_size=20).map(" ".join)


@PROPERTY
@given(text=sentence(russian_words), before=noise, after=noise)
def test_russian_is_answered_in_russian(text: str, before: str, after: str) -> None:
    assert detect_language(before + text + after) == "ru"
    assert detect_language(unicodedata.normalize("NFD", before + text + after)) == "ru"


@PROPERTY
@given(text=sentence(english_words), before=noise, after=noise)
def test_english_is_answered_in_english(text: str, before: str, after: str) -> None:
    assert detect_language(before + text + after) == "en"


@PROPERTY
@given(
    text=sentence(russian_words),
    names=st.lists(
        st.sampled_from(["iPhone 15", "Wi-Fi", "PDF", "USB-C", "Ozon", "Wildberries"]), max_size=3
    ),
)
def test_product_names_in_a_russian_sentence_keep_it_russian(text: str, names: list[str]) -> None:
    russian_letters = sum(ch.isalpha() for ch in text)
    latin_letters = sum(ch.isalpha() for name in names for ch in name)
    if latin_letters <= russian_letters:
        assert detect_language(" ".join([text, *names])) == "ru"


@PROPERTY
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
    allowed=st.lists(st.sampled_from(LANGUAGES), unique=True, max_size=2),
)
def test_the_language_is_always_one_the_tenant_allows(text: str, allowed: list[str]) -> None:
    language = detect_language(text, allowed or None)
    assert language in LANGUAGES
    if allowed:
        assert language in allowed


@PROPERTY
@given(own=sentence(russian_words), quoted=sentence(english_words), marks=st.sampled_from(["«»", "“”"]))
def test_an_answer_quoting_a_source_in_another_language_keeps_its_own(
    own: str, quoted: str, marks: str
) -> None:
    assert answer_language(f"{own} {marks[0]}{quoted}{marks[1]}") == "ru"
