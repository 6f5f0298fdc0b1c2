"""The extractive answerer's choices as pure units: lines that ask for secrets, sentences that join an
answer, and quotations of sources in another language."""

from __future__ import annotations

import asyncio

import pytest

from switchboard_chat.providers.base import AnswerVerdict, GenerationRequest, Passage, Similarity, TextDelta
from switchboard_chat.providers.extractive import (
    Candidate,
    ExtractiveProvider,
    answer_bonus,
    asks_for_own_account,
    asks_for_secrets,
    compose,
    logical_lines,
    question_parts,
    render,
    terms,
)
from switchboard_chat.providers.texts import order_state
from switchboard_chat.settings import ChatSettings
from switchboard_shared.contracts.retrieval import QueryWords, SearchHit


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
    "question",
    [
        "What is my balance?",
        "how many points do I have",
        "Check my bonus points please",
        "show my account",
        "What are my account details?",
        "Какой мой бонусный баланс?",
        "Сколько у меня баллов?",
        "скока у меня бонусов",
        "Покажите мои баллы",
    ],
)
def test_questions_about_the_customers_own_account_are_lookups(question: str) -> None:
    assert asks_for_own_account(question)


@pytest.mark.parametrize(
    "question",
    [
        # About the rules, which the knowledge base answers, although they say "my".
        "When do my bonus points actually show up after I buy something?",
        "do my points ever expire?",
        "Can I pay for my order with my points?",
        "Когда придут мои баллы за покупку?",
        "Мои бонусы сгорят?",
        "How do I check my balance?",
        "Как посмотреть мои баллы?",
    ],
)
def test_questions_about_how_points_work_are_not_lookups(question: str) -> None:
    assert not asks_for_own_account(question)


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


def test_list_items_of_an_answer_start_their_own_lines() -> None:
    chosen = [
        candidate(2, "- **Курьером** до двери: 349 ₽.", 0.6, 0.4),
        candidate(2, "- **В пункт выдачи**: 149 ₽.", 0.6, 0.4),
        candidate(2, "Срок — 1–4 рабочих дня.", 0.6, 0.4),
    ]
    assert render("ru", chosen) == (
        "- **Курьером** до двери: 349 ₽. [2]\n- **В пункт выдачи**: 149 ₽. [2]\nСрок — 1–4 рабочих дня. [2]"
    )
    prose = [candidate(1, "Возврат — 14 дней.", 0.6, 0.4), candidate(1, "Деньги вернём за 3 дня.", 0.6, 0.4)]
    assert render("ru", prose) == "Возврат — 14 дней. [1] Деньги вернём за 3 дня. [1]"


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


# --- Answers by meaning, end to end through the provider, with a stand-in for retrieval's similarity ---


def similarity(table: dict[tuple[str, str], float], default: float = 0.1) -> Similarity:
    """Cosines made up for the test: the largest score of the (query part, text part) pairs both contain."""

    async def compare(kb_id: str, queries: list[str], texts: list[str]) -> list[list[float]]:
        return [
            [max((v for (qp, tp), v in table.items() if qp in q and tp in t), default=default) for t in texts]
            for q in queries
        ]

    return compare


def hit(
    index: int,
    text: str,
    *,
    heading: str,
    language: str,
    score: float = 0.5,
    vector_score: float | None = None,
    bm25_score: float | None = None,
) -> Passage:
    return Passage(
        index,
        SearchHit(
            chunk_id=f"c{index}",
            document_id=f"d{index}",
            kb_id="kb",
            source_id="s",
            title=heading,
            heading_path=[heading],
            text=text,
            snippet=text[:40],
            score=score,
            vector_score=vector_score,
            bm25_score=bm25_score,
            language=language,
        ),
    )


def ask(
    question: str,
    language: str,
    passages: list[Passage],
    sim: Similarity,
    *,
    corrected_query: str | None = None,
    search_query: str | None = None,
) -> tuple[str, bool]:
    answer, refused, _ = ask_with_support(
        question, passages, sim, language=language, corrected_query=corrected_query, search_query=search_query
    )
    return answer, refused


def ask_with_support(
    question: str,
    passages: list[Passage],
    sim: Similarity,
    *,
    language: str = "en",
    corrected_query: str | None = None,
    search_query: str | None = None,
    query_words: QueryWords | None = None,
) -> tuple[str, bool, float | None]:
    """The answer, whether it is a refusal, and the support the answerer found."""
    request = GenerationRequest(
        system_prompt="",
        history=[],
        question=question,
        search_query=search_query or question,
        corrected_query=corrected_query,
        query_words=query_words,
        passages=passages,
        language=language,
        min_support=ChatSettings().min_support_score,
        cross_language_discount=0.08,
        similarity=sim,
    )

    async def run() -> tuple[str, bool, float | None]:
        parts, refused, support = [], True, None
        async for event in ExtractiveProvider().stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, AnswerVerdict):
                refused, support = event.no_answer, event.support
        return "".join(parts), refused, support

    return asyncio.run(run())


SSL = (
    "Custom domains\n==============\n\n"
    "Add your domain on the project's Domains page. Domains are usually validated and a certificate issued "
    "within 15 minutes. In rare cases the certificate might take up to one hour to be issued.\n\n"
    "Subprojects cannot have a custom domain of their own."
)


def test_a_russian_question_over_english_pages_quotes_the_sentence_and_the_one_that_completes_it() -> None:
    sim = similarity({("сертификат", "certificate issued within"): 0.55, ("сертификат", "one hour"): 0.35})
    answer, refused = ask(
        "Как долго ждать SSL-сертификат для своего домена?",
        "ru",
        [hit(1, SSL, heading="x", language="en")],
        sim,
    )
    assert not refused
    assert answer.startswith("В нашей базе знаний об этом написано по-английски:")
    assert "«Domains are usually validated and a certificate issued within 15 minutes.» [1]" in answer
    assert "up to one hour" in answer  # the next sentence holds the duration asked for
    assert "Subprojects" not in answer


def test_across_languages_a_cognate_picks_the_sentence_that_names_the_thing() -> None:
    # Equally close in meaning; the longer sentence would rank first on its length alone.
    text = (
        "Billing\n=======\n\nRenewals of every paid plan happen automatically each month on the billing date "
        "shown in your organization's settings.\n\nSecurity\n========\n\nCertificates renew automatically."
    )
    passage = hit(1, text, heading="x", language="en", vector_score=0.45)
    answer, refused = ask("Сертификаты продлеваются сами?", "ru", [passage], similarity({}, default=0.45))
    assert not refused
    assert "«Certificates renew automatically.» [1]" in answer
    assert "Renewals" not in answer


def test_a_question_that_asks_two_things_gets_both_answers() -> None:
    plus = hit(
        1,
        "Подписка «Пеликан Плюс» стоит 199 ₽ в месяц или 1 990 ₽ в год.",
        heading="Пеликан Плюс",
        language="ru",
    )
    perks = hit(
        2,
        "Возврат товара\n\nУчастникам «Пеликан Плюс» курьерская доставка бесплатна для любого заказа.",
        heading="Привилегии",
        language="ru",
    )
    sim = similarity(
        {
            ("Сколько стоит", "199 ₽"): 0.62,
            ("даёт ли она бесплатную доставку", "доставка бесплатна"): 0.6,
            ("Сколько стоит подписка", "доставка бесплатна"): 0.3,
        }
    )
    answer, refused = ask(
        "Сколько стоит подписка Пеликан Плюс и даёт ли она бесплатную доставку?", "ru", [plus, perks], sim
    )
    assert not refused
    assert "199 ₽" in answer and "курьерская доставка бесплатна" in answer
    assert "[1]" in answer and "[2]" in answer
    assert "Не уверен" not in answer


def test_when_only_one_of_two_questions_has_an_answer_that_one_is_answered() -> None:
    plus = hit(
        1,
        "«Пеликан Плюс» стоит 199 ₽ в месяц. Отменить её можно в профиле.",
        heading="Пеликан Плюс",
        language="ru",
        vector_score=0.3,
    )
    first = "Почём ваша подписка"

    async def compare(kb_id: str, queries: list[str], texts: list[str]) -> list[list[float]]:
        # The message as a whole asks two things and is close to no sentence; its first part means the price.
        return [[0.8 if q == first and "199 ₽" in t else 0.15 for t in texts] for q in queries]

    answer, refused = ask(f"{first}, и можно ли платить за неё биткоинами?", "ru", [plus], compare)
    assert not refused
    assert "199 ₽" in answer
    assert "Отменить" not in answer
    # The customer is told which part the answer is not sure of, not left to guess.
    assert answer.endswith(
        "\n\nНе уверен, что в нашей базе знаний есть ответ на эту часть вопроса: «можно ли платить за неё "
        "биткоинами». Могу подключить специалиста поддержки."
    )


def test_a_misspelt_question_is_read_as_retrieval_corrected_it() -> None:
    builds = hit(
        1,
        "Old builds are kept for 30 days. To cancel a build that is already running, click Cancel build.",
        heading="Builds",
        language="en",
        vector_score=0.3,
    )
    sim = similarity({}, default=0.3)  # the typos blur the meaning too; only the words can tell
    typed = "how do i cancle a bulid thats allready runnin"
    corrected = "how do i cancel a build thats already running"
    _, refused = ask(typed, "en", [builds], sim)
    assert refused  # no word of the question as typed is in the passage
    answer, refused = ask(typed, "en", [builds], sim, corrected_query=corrected)
    assert not refused
    assert "click Cancel build" in answer and "30 days" not in answer
    # A follow-up's search query (its words and the earlier question's) is what retrieval corrected.
    answer, refused = ask(
        "and if it is allready runnin?",
        "en",
        [builds],
        sim,
        search_query="cancle a bulid and if it is allready runnin?",
        corrected_query="cancel a build and if it is already running?",
    )
    assert not refused
    assert "click Cancel build" in answer


def test_the_sentence_in_the_passage_retrieval_found_best_beats_a_generic_one_from_another_passage() -> None:
    # A sentence about search and versions is close in meaning to many questions about docs; the passage
    # retrieval ranked first, by meaning and by words, holds the sentence that gives the fact.
    analytics = hit(
        1,
        "Traffic analytics\n\nRead the Docs aggregates statistics about visits to your documentation. "
        "To see a list of the top pages from the last month, open the Admin tab and click Traffic Analytics.",
        heading="Traffic analytics",
        language="en",
        score=0.081,
        vector_score=0.52,
        bm25_score=6.1,
    )
    generic = hit(
        2,
        "If readers search something related to your docs in Google, it will probably return the most "
        "relevant version of your documentation.",
        heading="How can I avoid search results showing an old version?",
        language="en",
        score=0.052,
        vector_score=0.31,
        bm25_score=1.2,
    )
    sim = similarity(
        {
            ("pages", "If readers search"): 0.5,
            ("pages", "How can I avoid search"): 0.45,
            ("pages", "aggregates statistics"): 0.3,
            ("pages", "top pages"): 0.35,
            ("pages", "Traffic analytics"): 0.3,
        }
    )
    answer, refused = ask(
        "Can I see which pages of my docs people read the most?", "en", [analytics, generic], sim
    )
    assert not refused
    assert "top pages" in answer
    assert "If readers search" not in answer


@pytest.mark.parametrize(("cosine", "answered"), [(0.55, True), (0.2, False)])
def test_whether_the_passage_retrieval_ranked_first_covers_the_question_decides_with_the_sentences(
    cosine: float, answered: bool
) -> None:
    # The same sentences, equally (and only moderately) close to the question, sharing none of its words: a
    # knowledge base whose best passage is close to it answers; one whose best passage is far from it refuses.
    returns = hit(
        1,
        "Items can be sent back within 30 days of delivery. Refunds arrive within 3 working days.",
        heading="Returns",
        language="en",
        vector_score=cosine,
    )
    sim = similarity({("deadline", "30 days"): 0.5}, default=0.2)
    answer, refused = ask("What is the deadline to ship a purchase to you?", "en", [returns], sim)
    assert refused is not answered
    assert ("30 days" in answer) is answered


def test_a_word_rare_in_the_knowledge_base_outweighs_one_every_page_holds() -> None:
    # Within the turn each sentence holds one of the question's words once, so the turn's own counts weigh
    # "project" and "webhook" alike and the longer, generic sentence wins. Across the knowledge base nearly
    # every passage says "project" and a handful say "webhook": that sentence is the answer. Whether there
    # is an answer at all (support) does not change.
    settings = hit(
        1,
        "Every project has a settings page where its maintainers can change the way it is built. "
        "Webhooks are listed under Integrations.",
        heading="Project settings",
        language="en",
        vector_score=0.5,
    )
    sim = similarity({}, default=0.45)
    question = "Where do I find the project webhook?"
    corpus = QueryWords(chunks=1200, frequencies={"find": 300, "project": 1100, "webhook": 6})
    answers = {}
    for words in (None, corpus):
        answer, refused, support = ask_with_support(question, [settings], sim, query_words=words)
        assert not refused
        answers[words is not None] = (answer, support)
    assert answers[False][0].startswith("Every project has a settings page")
    assert answers[True][0].startswith("Webhooks are listed under Integrations")
    assert answers[True][1] == answers[False][1]
    # A knowledge base whose keyword index counted nothing weighs words by the turn's sentences.
    nothing = QueryWords(chunks=0, frequencies={"project": 0, "webhook": 0})
    answer, refused, support = ask_with_support(question, [settings], sim, query_words=nothing)
    assert (answer, support) == answers[False] and not refused


def test_an_unanswerable_question_near_a_real_topic_is_refused() -> None:
    delivery = hit(
        1,
        "Курьером до двери: 349 ₽, бесплатно при заказе от 3 000 ₽. Пункт выдачи хранит посылку 7 дней.",
        heading="Способы и стоимость доставки",
        language="ru",
    )
    # Same topic (couriers), a shared word, but no sentence means what is asked.
    sim = similarity({("курьеров", "Курьером"): 0.25, ("курьеров", "Способы"): 0.22}, default=0.15)
    answer, refused = ask("Какая зарплата у ваших курьеров?", "ru", [delivery], sim)
    assert refused
    assert answer.startswith("Я не нашёл ответа")


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        (
            "How do I turn on 2FA, and what happens if I lose my phone afterwards?",
            ["How do I turn on 2FA", "what happens if I lose my phone afterwards"],
        ),
        (
            "Сколько стоит подписка Пеликан Плюс и даёт ли она бесплатную доставку?",
            ["Сколько стоит подписка Пеликан Плюс", "даёт ли она бесплатную доставку"],
        ),
        ("How do I cancel a build and start it again?", []),
        ("Сколько стоит доставка?", []),
    ],
)
def test_questions_that_ask_two_things_are_split(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


def test_the_sentence_a_colon_introduces_joins_the_best() -> None:
    best = Candidate(1, 0, "Builds are limited on the free plan:", 0.7, 0.7, 0.5, 0.0, "en")
    limit = Candidate(1, 1, "- 15 minutes of build time.", 0.3, 0.3, 0.1, 0.0, "en")
    other = Candidate(2, 0, "Ads are shown on free projects.", 0.35, 0.35, 0.1, 0.0, "en")
    chosen = compose([best, other, limit], min_support=0.42)
    assert [c.sentence for c in chosen] == [best.sentence, limit.sentence]


def test_a_sentence_two_passages_repeat_is_said_once() -> None:
    # The same paragraph in two documents: the best sentence's neighbour is the sentence already chosen
    # from the other copy.
    public = "Check the Public option if you want to expose this variable to builds from pull requests."
    best = Candidate(2, 1, "Anyone who can open a pull request can then see its value.", 0.9, 0.9, 0.5)
    first = Candidate(1, 0, public, 0.8, 0.8, 0.6)
    again = Candidate(2, 0, public, 0.8, 0.8, 0.5)
    chosen = compose([best, first, again], min_support=0.42)
    assert [c.sentence for c in chosen] == [public, best.sentence]


@pytest.mark.parametrize(
    ("question", "sentence", "bonus"),
    [
        ("скока стоит доставка курьером?", "Курьером до двери: 349 ₽.", 0.15),
        ("Какая зарплата у ваших курьеров?", "Курьером до двери: 349 ₽.", 0.0),  # a salary is not a price
        ("Our university wants a cheaper price", "We offer a 50% discount to academic projects.", 0.15),
        ("How long until the certificate is issued?", "It might take up to one hour.", 0.15),
        ("Как долго идёт доставка почтой?", "Почтой России: 299 ₽, 5–14 дней.", 0.15),
        ("а сертификат долго выпускается?", "Certificate issuance can take about one hour.", 0.15),
        ("How soon will my refund arrive?", "Refunds arrive within 3 business days.", 0.15),
        ("How long until the certificate is issued?", "Certificates are issued automatically.", -0.15),
        # Compound durations: "12-month warranty", "a 30-day trial", "6-месячная гарантия".
        ("How long does the warranty last?", "Phones have a **12-month** manufacturer's warranty.", 0.15),
        ("How long is the trial?", "Every plan starts with a 30-day free trial.", 0.15),
        ("Какой срок гарантии?", "На технику действует 6-месячная гарантия.", 0.15),
        (
            "How long does the warranty last?",
            "Defective items can be returned within the warranty period.",
            -0.15,
        ),
        # A time of day: "во сколько", "what time", opening hours; "when" keeps asking for a duration.
        ("во сколько приезжают курьеры", "Курьеры работают с 9:00 до 22:00.", 0.15),
        ("во сколько приезжают курьеры", "Курьер звонит за 30 минут до приезда.", -0.15),
        ("What are your opening hours?", "Pickup points are open daily from 10 am to 9 pm.", 0.15),
        ("When does a build fail?", '"start_date": "2021-11-03T16:23:14"', -0.15),
    ],
)
def test_the_kind_of_fact_asked_for(question: str, sentence: str, bonus: float) -> None:
    assert answer_bonus(question, sentence) == pytest.approx(bonus)


def test_e_and_yo_are_the_same_letter_to_shared_words() -> None:
    # Customers often type "е" for "ё": "счету" is the knowledge base's "счёту", "черный" its "чёрный".
    assert terms("Можно оплатить по счету? Есть черный цвет?") == terms("оплатить по счёту, чёрный цвет")


def test_a_decomposed_letter_from_a_pdf_stays_in_its_word() -> None:
    # PDFs and macOS write "й" and "ё" as a letter and a combining mark (NFD).
    decomposed = "Настрои\u0306ки сче\u0308та"
    assert terms(decomposed) == terms("Настройки счёта") == ["настр", "счета"]
