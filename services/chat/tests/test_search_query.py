"""The offline search query of a turn: what a follow-up borrows from the user turns before it."""

from __future__ import annotations

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.turn.query import search_query


def window(*turns: tuple[str, str]) -> list[WindowMessage]:
    return [WindowMessage(id=str(i), seq=i, role=role, text=text) for i, (role, text) in enumerate(turns)]


def test_a_short_follow_up_borrows_the_previous_questions_words() -> None:
    history = window(("user", "How do I add a custom domain?"), ("assistant", "Open Admin, then Domains."))
    query = search_query("And the certificate?", history)
    assert query.startswith("And the certificate?") and "custom domain" in query
    assert "Admin" not in query  # the bot's own words are not borrowed


def test_a_chain_of_follow_ups_reaches_back_to_the_question_that_named_the_topic() -> None:
    history = window(("user", "Сколько стоит доставка курьером?"), ("user", "а в Казахстан?"))
    query = search_query("а сроки?", history)
    assert "Казахстан" in query and "доставка" in query


def test_a_question_that_stands_on_its_own_is_searched_alone() -> None:
    history = window(("user", "Сколько дней на возврат товара?"))
    assert search_query("Какая погода на Марсе завтра?", history) == "Какая погода на Марсе завтра?"
    assert search_query("How do I delete my account?", []) == "How do I delete my account?"


def test_a_russian_personal_pronoun_marks_a_follow_up_as_it_does_in_english() -> None:
    # "он" is the promo code of the turn before, as "it" would be.
    history = window(("user", "Как применить промокод?"))
    query = search_query("а на подарочные карты он действует?", history)
    assert "промокод" in query
    assert "promo code" in search_query(
        "does it work on gift cards?", window(("user", "How do I use a promo code?"))
    )
