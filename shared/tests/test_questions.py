"""A message that asks two things is split into its questions; a follow-up's search query, the question with
the earlier turn's words after it, is not."""

from __future__ import annotations

import re

import pytest

from switchboard_shared.questions import question_parts


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if len(w) > 2]


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        (
            "Сколько стоит доставка курьером и можно ли платить биткоинами?",
            ["Сколько стоит доставка курьером", "можно ли платить биткоинами"],
        ),
        (
            "How do I turn on 2FA? What happens if I lose my phone",
            ["How do I turn on 2FA", "What happens if I lose my phone"],
        ),
        ("Can I offer a PDF? readers download it where?", ["Can I offer a PDF", "readers download it where"]),
        (
            "What file configures the build, and which version key is required?",
            ["What file configures the build", "which version key is required"],
        ),
        # A follow-up searched with the earlier question's words: one question, not two.
        ("can they also delete stuff? automation rules versions", []),
        ("а деньги когда придут? возврат товара", []),
        # One question with "and" inside it, and a piece too short to be a question.
        ("How do I cancel a build and start it again?", []),
        ("Where is my parcel now? Why?", []),
    ],
)
def test_a_message_is_split_into_the_questions_it_asks(message: str, parts: list[str]) -> None:
    assert question_parts(message, words) == parts
