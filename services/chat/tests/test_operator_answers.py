"""Which customer questions an operator answered when the bot could not: refused, rated down, or asked
while a human had the conversation; requests for a human and answered questions pair with nothing."""

from __future__ import annotations

from typing import Any

from switchboard_chat.conversations.models import MessageRow
from switchboard_chat.conversations.suggestions import OperatorAnswer, operator_answers


def _messages(*specs: tuple[str, str, dict[str, Any]]) -> list[MessageRow]:
    rows = []
    for seq, (role, text, extra) in enumerate(specs, start=1):
        rows.append(
            MessageRow(
                id=f"m{seq}",
                conversation_id="c1",
                tenant_id="t",
                seq=seq,
                role=role,
                text=text,
                no_answer=extra.get("no_answer", False),
                meta=extra.get("meta", {}),
            )
        )
    return rows


def user(text: str) -> tuple[str, str, dict[str, Any]]:
    return ("user", text, {})


def bot(text: str, **extra: Any) -> tuple[str, str, dict[str, Any]]:
    return ("assistant", text, extra)


def operator(text: str) -> tuple[str, str, dict[str, Any]]:
    return ("operator", text, {})


HANDOFF = {"meta": {"escalation": "customer asked for a human ('human')"}}


def test_a_refused_question_pairs_with_the_operator_reply_after_the_request_for_a_human() -> None:
    messages = _messages(
        bot("Hi! How can I help?", meta={"greeting": True}),
        user("Can I pay with crypto?"),
        bot("I could not find this in our help centre.", no_answer=True),
        user("human please"),
        bot("Connecting you to a person.", **HANDOFF),
        operator("Hello!"),
        operator("Not yet: cards and SBP only."),
    )
    assert operator_answers(messages, set()) == [
        OperatorAnswer("Can I pay with crypto?", "Hello!\n\nNot yet: cards and SBP only.", "no_answer")
    ]


def test_questions_asked_of_the_human_and_rated_down_answers_count_answered_ones_do_not() -> None:
    messages = _messages(
        user("How much is delivery?"),
        bot("Courier delivery costs 349 ₽. [1]"),
        user("Where is the pickup point?"),
        bot("The pickup point is at Lenina 1. [2]"),
        user("operator"),
        bot("Connecting you to a person.", **HANDOFF),
        operator("Hi, how can I help?"),  # answers only a request for a human: no pair
        user("Can I change the delivery address?"),
        operator("Yes, until the parcel ships."),
        user("Thanks"),
    )
    assert operator_answers(messages, set()) == [
        OperatorAnswer("Can I change the delivery address?", "Yes, until the parcel ships.", "handoff")
    ]
    # The same conversation with the pickup answer rated down before the handoff: that question pairs with
    # the operator's first reply.
    messages = _messages(
        user("Where is the pickup point?"),
        bot("The pickup point is at Lenina 1. [2]"),
        user("operator"),
        bot("Connecting you to a person.", **HANDOFF),
        operator("It moved to Mira 5 last week."),
    )
    assert operator_answers(messages, {"m2"}) == [
        OperatorAnswer("Where is the pickup point?", "It moved to Mira 5 last week.", "thumbs_down")
    ]
    assert operator_answers(messages, set()) == []


def test_no_operator_reply_no_suggestion() -> None:
    messages = _messages(user("Can I pay with crypto?"), bot("I could not find this.", no_answer=True))
    assert operator_answers(messages, set()) == []
