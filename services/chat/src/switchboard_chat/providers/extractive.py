"""The offline default provider: answers with the passages' own most relevant sentences, cited.

It never writes a sentence of its own about the subject: either it quotes passages (marking each with its
passage number) or it says plainly that it does not know and offers a human. Order and account questions
are routed to the tools by simple patterns, since there is no model to call them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from switchboard_chat.providers.base import (
    AnswerVerdict,
    ChatProvider,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.texts import text
from switchboard_chat.tools.service import ToolOutcome, ToolSpec

WORD = re.compile(r"\w+", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'«(\[]?[A-ZА-ЯЁ0-9])|\n+")
ORDER = re.compile(
    r"(?:order|заказ\w*)\s*(?:number|no\.?|номер|№|#)?\s*[:#№]?\s*([A-Za-z]{0,5}-?\d[\w-]{1,38})",
    re.IGNORECASE,
)
# Questions about the customer's own data ("what is my balance"), not how-to questions that mention the
# account ("how do I delete my account").
ACCOUNT = re.compile(
    r"\bmy (?:account |bonus )?(?:balance|points)\b|\bmy (?:account|profile) (?:details|info\w*|data)\b"
    r"|\b(?:show|check|see) my (?:account|profile)\b"
    r"|(?:мой|моём|моем)\s+(?:бонусн\w+\s+)?(?:баланс|счёт|счет)|(?:мои|моих)\s+(?:бонус\w*|балл\w*)"
    r"|(?:данные|информаци\w+)\s+(?:моего|о моём|о моем|моём|моем)\s+(?:аккаунт|профил)\w*",
    re.IGNORECASE,
)
HOW_TO = re.compile(r"^\s*(?:how (?:do|can|should) i|как\b)", re.IGNORECASE)
# What kind of answer a question wants, and what a sentence that gives it contains.
ANSWER_TYPES = (
    (
        re.compile(r"how much|cost|price|fee|charge|pay for|сколько стоит|стоимост|цен[аыу]|плат[аиу]", re.I),
        re.compile(r"\d[\d\s.,]*\s?(?:₽|руб|rub|\$|€|usd|eur)|(?:₽|\$|€)\s?\d|free|бесплатн", re.I),
    ),
    (
        re.compile(
            r"how long|how many (?:days|hours|weeks)|when|сколько (?:дней|времени|часов)|как долго|когда|срок",
            re.I,
        ),
        re.compile(
            r"\d+\s*(?:-|–)?\s*\d*\s*(?:day|hour|week|month|year|minute|дн|день|час|недел|месяц|год|лет|минут)",
            re.I,
        ),
    ),
)
QUESTION_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?(?:Q|В|Вопрос|Question)\s*[:.]", re.IGNORECASE)
ANSWER_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:A|О|Ответ|Answer)\s*[:.]\s*(?:\*\*)?\s*", re.IGNORECASE)
TYPE_BONUS = 0.3
CONTEXT_SHARE = 0.5
RANK_PRIOR = 0.25
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 700

STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at by for with from about as into is are was were be been being do does
    did doing have has had i me my we our you your he she it its they them their this that these those what
    which who whom how why when where there here can could should would will shall may might must not no yes
    please thanks thank hello hi so than then too very just also get got want need tell know
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот
    от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять
    уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без
    будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти
    мой тем чтобы нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше
    тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше
    чуть том нельзя такой им более всегда конечно всю между скажите подскажите пожалуйста здравствуйте как
    """.split()
)


def terms(value: str) -> list[str]:
    """Lower-cased content words cut to a 5-letter stem, which is crude but serves Russian and English."""
    out = []
    for word in WORD.findall(value.lower()):
        if word in STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        out.append(word[:5] if len(word) > 5 else word)
    return out


@dataclass(slots=True)
class Candidate:
    passage: int
    position: int
    sentence: str
    score: float
    support: float = 0.0


def split_sentences(passage_text: str) -> list[str]:
    """Sentences that can answer: not the FAQ's own question lines, without the "A:" label."""
    sentences = []
    for raw in SENTENCE_END.split(passage_text):
        sentence = raw.strip()
        if QUESTION_LINE.match(sentence) or sentence.endswith("?"):
            continue
        sentence = ANSWER_PREFIX.sub("", sentence)
        if 15 <= len(sentence) <= 500:
            sentences.append(sentence)
    return sentences


def _answer_bonus(question: str, sentence: str) -> float:
    bonus = 0.0
    for asks, gives in ANSWER_TYPES:
        if asks.search(question) and gives.search(sentence):
            bonus += TYPE_BONUS
    return bonus


def rank_sentences(
    question: str, passages: list[tuple[int, str]], contexts: dict[int, str] | None = None
) -> list[Candidate]:
    """Score every sentence by the share of the question's (idf-weighted) terms it contains; a term found
    only in its passage's title or heading path (a list item under "Delivery") counts half."""
    query = set(terms(question))
    if not query:
        return []
    context_terms = {index: set(terms(value)) for index, value in (contexts or {}).items()}
    sentences = [
        (index, position, sentence, set(terms(sentence)))
        for index, body in passages
        for position, sentence in enumerate(split_sentences(body))
    ]
    if not sentences:
        return []
    df: Counter[str] = Counter()
    for *_, words in sentences:
        df.update(words & query)
    n = len(sentences)
    # A term no sentence contains weighs like a rare one, not more: questions carry words ("long", "run")
    # that the answering sentence need not repeat.
    weight = {term: math.log(1 + n / (1 + max(1, df[term]))) for term in query}
    total = sum(weight.values())
    # Lexical support, nudged towards the passages retrieval ranked first and towards sentences that hold
    # the kind of fact the question asks for (a price, a duration); with no shared term a sentence stays 0.
    ranked = []
    for index, position, sentence, words in sentences:
        from_context = (context_terms.get(index, set()) & query) - words
        support = (
            sum(weight[t] for t in words & query) + CONTEXT_SHARE * sum(weight[t] for t in from_context)
        ) / total
        if not words & query:
            support = 0.0
        score = support * (1 + RANK_PRIOR / index) + _answer_bonus(question, sentence) if support else 0.0
        ranked.append(Candidate(index, position, sentence, score, support))
    ranked.sort(key=lambda c: (-c.score, c.passage, c.position))
    return ranked


def compose(candidates: list[Candidate], min_support: float) -> list[Candidate]:
    """The best sentences, each with enough lexical support on its own (the answer-type and rank nudges
    order them but never make an unsupported sentence an answer)."""
    supported = [c for c in candidates if c.support >= min_support]
    if not supported:
        return []
    floor = supported[0].score * 0.6
    chosen: list[Candidate] = []
    length = 0
    for candidate in supported:
        if candidate.score < floor or len(chosen) >= MAX_SENTENCES:
            break
        if length + len(candidate.sentence) > MAX_ANSWER_CHARS and chosen:
            break
        chosen.append(candidate)
        length += len(candidate.sentence)
    chosen.sort(key=lambda c: (c.passage, c.position))
    return chosen


class ExtractiveProvider(ChatProvider):
    name = "extractive"
    key = "extractive"

    def __init__(self, *, first_token_timeout: float = 10.0) -> None:
        self.first_token_timeout = first_token_timeout

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        tool_reply = await self._route_to_tools(request)
        if tool_reply is not None:
            for event in tool_reply[0]:
                yield event
            yield TextDelta(tool_reply[1])
            yield AnswerVerdict(no_answer=False)
            return
        chosen = compose(
            rank_sentences(request.question, _bodies(request), _contexts(request)),
            request.min_support,
        )
        if not chosen and request.search_query != request.question:
            # A follow-up ranked with the earlier question's terms must still share a word with its own.
            own = set(terms(request.question))
            chosen = [
                c
                for c in compose(
                    rank_sentences(request.search_query, _bodies(request), _contexts(request)),
                    request.min_support,
                )
                if not own or own & set(terms(c.sentence))
            ]
        if not chosen:
            yield TextDelta(text(request.language, "kb_down" if request.kb_unavailable else "no_answer"))
            yield AnswerVerdict(no_answer=True)
            return
        for i, candidate in enumerate(chosen):
            separator = "" if i == 0 else " "
            yield TextDelta(f"{separator}{candidate.sentence} [{candidate.passage}]")
        yield AnswerVerdict(no_answer=False)

    async def _route_to_tools(self, request: GenerationRequest) -> tuple[list[ToolEvent], str] | None:
        language = request.language
        order = ORDER.search(request.question)
        wants_account = ACCOUNT.search(request.question) is not None and not HOW_TO.match(request.question)
        if order is None and not wants_account:
            return None
        if request.tools_unavailable:
            return [], text(language, "tools_down")
        tools = {tool.name: tool for tool in request.tools}
        if order is not None and "get_order_status" in tools:
            number = order.group(1)
            arguments = {"order_number": number}
            outcome = await tools["get_order_status"].run(arguments)
            events = [
                ToolEvent("get_order_status", arguments, "started"),
                _event(tools["get_order_status"], arguments, outcome),
            ]
            return events, _order_text(language, number, outcome)
        if wants_account and "get_customer" in tools:
            outcome = await tools["get_customer"].run({})
            events = [ToolEvent("get_customer", {}, "started"), _event(tools["get_customer"], {}, outcome)]
            if outcome.status == "ok":
                customer = outcome.data["customer"]
                email = f", {customer['email']}" if customer.get("email") else ""
                return events, text(
                    language, "customer", name=customer.get("name") or customer["id"], email=email
                )
            return events, _failure_text(language, outcome)
        return None


def _bodies(request: GenerationRequest) -> list[tuple[int, str]]:
    return [(p.index, p.hit.text) for p in request.passages]


def _contexts(request: GenerationRequest) -> dict[int, str]:
    return {p.index: " ".join([p.hit.title, *p.hit.heading_path]) for p in request.passages}


def _event(tool: ToolSpec, arguments: dict[str, str], outcome: ToolOutcome) -> ToolEvent:
    return ToolEvent(
        tool.name, arguments, outcome.status if outcome.status != "not_found" else "ok", outcome.data
    )


def _failure_text(language: str, outcome: ToolOutcome) -> str:
    return text(language, "sign_in" if outcome.status == "refused" else "tools_down")


def _order_text(language: str, number: str, outcome: ToolOutcome) -> str:
    if outcome.status == "not_found":
        return text(language, "order_not_found", number=number)
    if outcome.status != "ok":
        return _failure_text(language, outcome)
    order = outcome.data["order"]
    reply = text(language, "order_status", number=order["number"], status=order["status"])
    if order.get("tracking_number"):
        reply += text(language, "order_tracking", tracking=order["tracking_number"])
    if order.get("tracking_url"):
        reply += text(language, "order_tracking_url", url=order["tracking_url"])
    return reply
