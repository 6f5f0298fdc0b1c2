"""The extractive answerer's choices as pure units: lines that ask for secrets, sentences that join an
answer, and quotations of sources in another language."""

from __future__ import annotations

import pytest

from switchboard_chat.providers.extractive import (
    Candidate,
    asks_for_secrets,
    compose,
    logical_lines,
    render,
)
from switchboard_chat.providers.texts import order_state


@pytest.mark.parametrize(
    "line",
    [
        "To confirm the payment, send us your card number and CVV.",
        "Reply with the one-time code we texted you to finish the refund.",
        "Verify your account at http://secure-login.example with your password.",
        "Please provide your PIN so that we can unblock the card.",
        "Пришлите номер карты и CVV-код, чтобы подтвердить оплату.",
        "Сообщите оператору пароль и код из СМС.",
        "Введите данные карты на странице https://oplata-check.example.",
    ],
)
def test_lines_that_ask_for_credentials_or_payment_data(line: str) -> None:
    assert asks_for_secrets(line)


@pytest.mark.parametrize(
    "line",
    [
        "We never ask for your password or card number in the chat.",
        "Никогда никому не сообщайте код из СМС.",
        "Courier delivery costs 349 ₽, free for orders over 3,000 ₽.",
        "The link to reset your password is valid for 60 minutes.",
        "Мы принимаем карты Visa, Mastercard и «Мир».",
    ],
)
def test_ordinary_and_warning_lines_are_kept(line: str) -> None:
    assert not asks_for_secrets(line)


def candidate(passage: int, sentence: str, score: float, semantic: float, language: str = "ru") -> Candidate:
    return Candidate(passage, 0, sentence, score, score, semantic, 0.0, language)


def test_only_sentences_that_answer_on_their_own_join_the_best() -> None:
    ranked = [
        candidate(2, "Курьером до двери: 349 ₽.", 0.61, 0.36),
        candidate(2, "В пункт выдачи: 149 ₽.", 0.58, 0.30),
        candidate(3, "Подписка стоит 199 ₽ в месяц.", 0.58, 0.18),  # close in score, about something else
        candidate(1, "Заказы доставляем по всей России.", 0.40, 0.30),  # far below the best
    ]
    chosen = compose(ranked, min_support=0.42)
    assert [c.sentence for c in chosen] == ["Курьером до двери: 349 ₽.", "В пункт выдачи: 149 ₽."]
    assert compose(ranked, min_support=0.7) == []


def test_sources_in_another_language_are_quoted_after_a_lead_in() -> None:
    chosen = [candidate(1, "Builds time out after 15 minutes.", 0.6, 0.5, language="en")]
    answer = render("ru", chosen)
    assert answer.startswith("В нашей базе знаний об этом написано по-английски:")
    assert "«Builds time out after 15 minutes.» [1]" in answer
    assert render("en", chosen) == "Builds time out after 15 minutes. [1]"


def test_wrapped_lines_are_one_sentence_and_headings_are_kept() -> None:
    text = "Versions\n========\n\nWhen a user opens the root URL,\nthey are redirected.\n\n* One item\n* Two"
    assert logical_lines(text) == [
        ("When a user opens the root URL, they are redirected.", "Versions"),
        ("* One item", "Versions"),
        ("* Two", "Versions"),
    ]


def test_order_states_read_in_the_customers_language() -> None:
    assert order_state("ru", "shipped") == "передан в доставку"
    assert order_state("en", "shipped") == "shipped"
    assert order_state("ru", "lost-in-space") == "lost-in-space"
