"""Properties of BM25 tokenisation (Russian and English) and of the language detector used on chunks."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_retrieval.index.text import STOPWORDS, tokenize
from switchboard_shared.language import text_language

PROPERTY = settings(max_examples=300, deadline=None)

RUSSIAN = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
ENGLISH = "abcdefghijklmnopqrstuvwxyz"
russian_words = st.text(alphabet=RUSSIAN, min_size=2, max_size=14)
english_words = st.text(alphabet=ENGLISH, min_size=2, max_size=14)
SPACING = st.sampled_from([" ", "  ", "\n", ", ", ". ", "! ", " — ", " (", ") ", "? ", "\t", " 🙂 ", "…"])


@st.composite
def sentences(draw: st.DrawFn, words: st.SearchStrategy[str]) -> str:
    parts = draw(st.lists(st.tuples(words, SPACING), min_size=1, max_size=25))
    return "".join(word + space for word, space in parts)


mixed = st.one_of(
    sentences(russian_words), sentences(english_words), sentences(russian_words | english_words)
)


@PROPERTY
@given(text=mixed)
def test_tokens_do_not_depend_on_unicode_normalisation_form(text: str) -> None:
    # Text from PDFs and macOS carries "й" and "ё" decomposed (NFD); a query typed on a keyboard is NFC.
    assert tokenize(unicodedata.normalize("NFD", text)) == tokenize(unicodedata.normalize("NFC", text))


@PROPERTY
@given(text=mixed)
def test_tokens_do_not_depend_on_case_or_yo(text: str) -> None:
    assert tokenize(text.upper()) == tokenize(text)
    assert tokenize(text.replace("е", "ё")) == tokenize(text.replace("ё", "е"))


@PROPERTY
@given(text=mixed, separator=SPACING)
def test_tokenising_is_a_homomorphism_over_whitespace(text: str, separator: str) -> None:
    # Tokens of a concatenation are the tokens of its parts: indexing passage by passage loses nothing.
    assert tokenize(text + separator + text) == tokenize(text) + tokenize(text)


@PROPERTY
@given(text=mixed)
def test_tokens_are_lower_case_single_words(text: str) -> None:
    tokens = tokenize(text)
    assert all(token and token == token.lower() for token in tokens)
    assert all(token.isalnum() for token in tokens)
    assert len(tokens) <= len(text.split()) + sum(text.count(p) for p in ",.!?()—…")


@PROPERTY
@given(words=st.lists(st.sampled_from(sorted(STOPWORDS)), min_size=1, max_size=20), spacing=SPACING)
def test_stop_words_alone_give_no_tokens(words: list[str], spacing: str) -> None:
    text = spacing.join(words)
    assert tokenize(text) == []
    assert tokenize(text.upper()) == []


@PROPERTY
@given(word=russian_words | english_words, suffix=st.sampled_from(["", "s", "а", "ы", "ами"]))
def test_a_word_and_its_punctuated_forms_tokenise_alike(word: str, suffix: str) -> None:
    base = tokenize(word + suffix)
    for dressed in (
        f"«{word}{suffix}»",
        f"({word}{suffix})",
        f"{word}{suffix}!",
        f"\u200f{word}{suffix}\u200e",
    ):
        assert tokenize(dressed) == base, dressed


@PROPERTY
@given(text=sentences(russian_words))
def test_russian_text_is_russian(text: str) -> None:
    assert text_language(text) == "ru"


@PROPERTY
@given(text=sentences(english_words))
def test_english_text_is_english(text: str) -> None:
    assert text_language(text) == "en"


@PROPERTY
@given(
    russian=sentences(russian_words),
    names=st.lists(st.sampled_from(["iPhone", "Wi-Fi", "PDF", "Read the Docs", "USB-C"]), max_size=3),
    noise=st.text(alphabet="0123456789 .,!?-+%€$₽🙂🚚🎉\u200f\u0301", max_size=40),
)
def test_product_names_digits_and_emoji_do_not_turn_russian_into_english(
    russian: str, names: list[str], noise: str
) -> None:
    letters = sum(ch.isalpha() for ch in russian)
    latin = sum(ch.isalpha() for name in names for ch in name)
    text = " ".join([russian, *names, noise])
    if latin <= letters:  # mostly Russian by letters
        assert text_language(text) == "ru"
    assert text_language(noise) in (None, "ru", "en")
    assert text_language(unicodedata.normalize("NFD", text)) == text_language(text)
