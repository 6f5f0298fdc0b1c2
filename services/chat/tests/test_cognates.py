import asyncio

import pytest

from switchboard_chat.providers.base import GenerationRequest, Passage
from switchboard_chat.providers.cognates import cognate_keys
from switchboard_chat.providers.extractive import Unit, cognate_support, read, units_of
from switchboard_shared.contracts.retrieval import SearchHit


@pytest.mark.parametrize(
    ("russian", "english"),
    [
        ("сертификат", "certificate"),
        ("домене", "domain"),
        ("версию", "version"),
        ("хостинга", "hosting"),
        ("редирект", "redirect"),
        ("репозитории", "repository"),
        ("документацию", "documentation"),
        ("аналитика", "analytics"),
        ("конфиг", "config"),
        ("токен", "token"),
        ("проекта", "project"),
        ("пулл-реквест", "pull request"),
    ],
)
def test_a_russian_loanword_shares_a_key_with_its_english_source(russian: str, english: str) -> None:
    assert cognate_keys(russian) & cognate_keys(english)


@pytest.mark.parametrize(
    ("russian", "english"),
    [("сборка", "build"), ("отменить", "cancel"), ("сертификат", "short"), ("доставка", "delivery")],
)
def test_words_that_do_not_sound_alike_share_no_key(russian: str, english: str) -> None:
    assert not cognate_keys(russian) & cognate_keys(english)


def test_short_words_have_no_key() -> None:
    assert cognate_keys("а код? SSL") == frozenset()


def test_an_english_plural_keys_as_its_singular() -> None:
    assert cognate_keys("вебхука") & cognate_keys("webhooks")
    assert cognate_keys("статусе") & cognate_keys("status")  # a singular that ends in -s keeps it


def test_stop_words_have_no_key() -> None:
    # "много" would key as "manage" does, "перед" as "period", "через" as "across"
    assert cognate_keys("много перед через") == frozenset()


def topic_passages() -> tuple[list[Unit], dict[int, str]]:
    texts = {
        1: "Your documentation is rebuilt on every push. A running build is cancelled when a new commit arrives.",
        2: "Documentation versions are listed on the dashboard. Webhooks report the build status.",
        3: "Documentation pages can be downloaded as PDF.",
    }
    units = units_of([(index, body, "", "kb", "en") for index, body in texts.items()])
    return units, {index: "" for index in texts}


def test_a_cognate_in_most_of_the_turns_passages_is_their_topic_and_counts_for_no_sentence() -> None:
    units, contexts = topic_passages()
    question = "Как отменить сборку документации?"
    shared = cognate_support(question, "ru", units, contexts, [0.0] * len(units))
    assert shared is not None and not any(shared)


def test_a_cognate_in_few_of_the_turns_passages_still_picks_its_sentence() -> None:
    units, contexts = topic_passages()
    shared = cognate_support(
        "Где посмотреть вебхуки документации?", "ru", units, contexts, [0.0] * len(units)
    )
    assert shared is not None
    best = max(range(len(units)), key=lambda i: shared[i])
    assert units[best].sentence == "Webhooks report the build status."
    assert shared[best] > 0


def test_a_follow_ups_cognates_are_read_with_the_earlier_questions_words() -> None:
    passages = [
        Passage(
            i,
            SearchHit(
                chunk_id=f"c{i}",
                document_id=f"d{i}",
                kb_id="kb",
                source_id="s",
                title="Help",
                text=body,
                snippet=body[:40],
                score=0.5,
                language="en",
            ),
        )
        for i, body in enumerate(["You can delete the project and create it again.", "Remove the domain."], 1)
    ]
    request = GenerationRequest(
        system_prompt="",
        history=[],
        question="А как его потом удалить?",
        search_query="А как его потом удалить? Вчера добавил свой домен",
        passages=passages,
        language="ru",
    )
    reading = asyncio.run(read(request))
    assert reading is not None and reading.cognates is not None
    by_sentence = dict(zip((unit.sentence for unit in reading.units), reading.cognates, strict=True))
    assert by_sentence["Remove the domain."] > 0  # "домен" is only in the earlier question
    assert by_sentence["You can delete the project and create it again."] < 1.0
