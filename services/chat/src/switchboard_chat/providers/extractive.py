"""The offline default provider: answers with the passages' own most relevant sentences, cited.

It never writes a sentence of its own about the subject: either it quotes passages (marking each with its
passage number) or it says plainly that it does not know and offers a human. Order and account questions
are routed to the tools by simple patterns, since there is no model to call them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from functools import lru_cache

from switchboard_chat.providers.base import (
    AnswerVerdict,
    ChatProvider,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.cognates import READ_CACHE_SIZE, cognate_keys
from switchboard_chat.providers.stopwords import STOPWORDS
from switchboard_chat.providers.texts import language_name, order_state, text
from switchboard_chat.tools.service import ToolOutcome, ToolSpec
from switchboard_shared.contracts.retrieval import QueryWords
from switchboard_shared.folding import fold
from switchboard_shared.language import text_language
from switchboard_shared.questions import question_parts as split_questions

WORD = re.compile(r"\w+", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'«(\[]?[A-ZА-ЯЁ0-9])|\n+")
ORDER = re.compile(
    r"(?:order|заказ\w*)\s*(?:number|no\.?|номер|№|#)?\s*[:#№]?\s*([A-Za-z]{0,5}-?\d[\w-]{1,38})",
    re.IGNORECASE,
)
# Questions about the customer's own data ("what is my balance", "how many points do I have"), not how-to
# questions that mention the account ("how do I delete my account") and not questions about the rules that
# happen to say "my" ("when do my bonus points show up?", «мои баллы сгорят?»): the knowledge base answers those.
ACCOUNT = re.compile(
    r"\bmy (?:account |bonus |points? )?balance\b|\bmy (?:account|profile) (?:details|info\w*|data)\b"
    r"|\b(?:show|check|see|view) my (?:account|profile|(?:bonus )?points|balance)\b"
    r"|\bhow many (?:bonus )?points (?:do i have|have i got|are (?:left )?(?:in|on) my)"
    r"|(?:мой|моём|моем)\s+(?:бонусн\w+\s+)?(?:баланс|счёт|счет)"
    r"|(?:сколько|скока)\s+(?:сейчас\s+|ещё\s+|еще\s+)?у\s+меня\s+(?:бонусн\w+\s+)?(?:бонус|балл)\w*"
    r"|(?:покаж\w*|провер\w*|посмотр\w*)\s+(?:мои|моих|мой)\s+(?:бонус\w*|балл\w*|баланс)"
    r"|(?:данные|информаци\w+)\s+(?:моего|о моём|о моем|моём|моем)\s+(?:аккаунт|профил)\w*",
    re.IGNORECASE,
)
HOW_TO = re.compile(r"^\s*(?:how (?:do|can|should) i|как\b)", re.IGNORECASE)
# What kind of answer a question wants, and what a sentence that gives it contains.
# Amounts written in words ("one hour", "шесть недель", "a few minutes").
NUMBER_WORDS = (
    r"(?:\d+(?:[.,]\d+)?|a few|a couple of|an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve"
    r"|fifteen|twenty|thirty|sixty|ninety|hundred|half an?|several|один|одн\w+|два|две|тр[иеё]\w*|четыр\w+"
    r"|пят\w*|шест\w*|сем\w*|восем\w*|девят\w*|десят\w*|несколько|пару|полчаса|полгода)"
)
# A time of day ("9:00", "7 pm", "24/7"): what "what time" and "opening hours" ask for ("when" asks for a
# duration or a date more often, and documentation is full of timestamps).
CLOCK = r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)|24/7|around the clock|круглосуточн"
ANSWER_TYPES = (
    (
        re.compile(
            r"how much|cost|price|fee|charge|pay for|cheaper|discount|(?:сколько|скока)\s+(?:\w+\s+){0,2}сто[ия]т|почём|\bпочем\b"
            r"|стоимост|\bцен[аыу]|\bплат[аиу]"
            r"|дешевле|скидк",
            re.I,
        ),
        re.compile(
            r"\d[\d\s.,]*\s?(?:₽|руб|rub|\$|€|usd|eur)|(?:₽|\$|€)\s?\d|\d\s?%|free|discount|бесплатн|скидк",
            re.I,
        ),
    ),
    (
        re.compile(
            r"how long|how soon|how quickly|how many (?:days|hours|weeks)|when|сколько (?:дней|времени|часов)|долго|когда|срок",
            re.I,
        ),
        re.compile(
            # "3-5 days", and the compound "12-month" / "30-day" / "6-месячная".
            NUMBER_WORDS + r"(?:\s*[-–]\s*\d+)?\s*[-‐]?\s*(?:(?:working|business|calendar|рабоч\w*"
            r"|календарн\w*|банковск\w*)\s+)?(?:day|hour|week|month|year|minute|second|дн|день|час|недел"
            r"|месяц|месяч|год|лет|минут|секунд)",
            re.I,
        ),
    ),
    (
        re.compile(
            r"what time|(?:opening|business|working|office) hours|hours of operation|closing time"
            r"|(?:until|till) (?:when|what time)"
            r"|во сколько|до скольки|со скольки|до какого (?:часа|времени)|с какого (?:часа|времени)"
            r"|(?:часы|график|режим) работы",
            re.I,
        ),
        re.compile(CLOCK, re.I),
    ),
)
# Facts a sentence next to the chosen one may carry that complete the answer (a figure, a limit, a time of
# day, a place in the interface), whatever kind of answer the question asked for.
DETAIL = re.compile(
    r"\d|→|\*[^*\s][^*]*\*|`[^`]+`|\b(?:free|only|at most|at least|never|not|cannot|can't|must)\b"
    r"|бесплатн|только|не более|не менее|нельзя|не\s",
    re.IGNORECASE,
)
QUESTION_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?(?:Q|В|Вопрос|Question)\s*[:.]", re.IGNORECASE)
ANSWER_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:A|О|Ответ|Answer)\s*[:.]\s*(?:\*\*)?\s*", re.IGNORECASE)
QUESTION_ONLY = re.compile(r"[?？]\s*$")
LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
HEADING_MARK = re.compile(r"^\s*#{1,6}\s+")
UNDERLINE = re.compile(r"^([=\-~^*+`#\"'])\1{2,}\s*$")
# Support: whether the passages answer the question at all, as the best sentence's. Meaning (cosine in the
# knowledge base's own embedding space, which works across languages) of the sentence read under its heading
# and of its section heading, the share of the question's words it holds (same language), whether it holds
# the kind of fact the question asks for (a price, a duration), and coverage: how close the passage
# retrieval ranked first is to the question (whether the knowledge base covers a question shows better in
# the whole passage than in any one sentence). Fitted by ``scripts/fit_support.py`` as a class-balanced
# logistic regression of "answerable" over the best sentence's support, on captures of the evaluation's main
# sets (answerable and unanswerable questions), with the threshold (``min_support``) and the cross-language
# discount, and checked on the ``*_holdout`` sets (README, "Answer quality"). Without meaning scores, shared
# words and the kind of fact decide, and the passages' retrieval rank breaks ties.
SUPPORT_MEANING = 1.72
SUPPORT_SECTION = 0.54
SUPPORT_WORDS = 1.86
SUPPORT_TYPE = 0.36
SUPPORT_COVERAGE = 2.0
TYPE_BONUS = 0.15
RANK_PRIOR = 0.05
CONTEXT_SHARE = 0.5
# Which sentence answers, once support says there is an answer: a linear ranker over the same signals plus
# the passage's own retrieval evidence (its cosine with the query and its fused retrieval score relative to
# the turn's best) and the sentence's length (fragments such as ":Automatically:" rarely answer), fitted by
# ``scripts/fit_answer_ranker.py`` as a listwise softmax over the sentences that hold the expected fact on
# captures of the evaluation's main sets and checked on the ``*_holdout`` sets (README, "Answer quality").
# The section heading's similarity keeps a small fixed weight the fit does not set: the documentation sets
# rarely list facts under a heading that names the question, help-centre pages do ("Delivery costs" above
# "- Courier: 349 ₽"). A sentence that only introduces what follows (ends with a colon) is rarely it.
RANK_SEMANTIC = 0.6
RANK_SECTION = 0.21
RANK_LEXICAL = 1.17
RANK_TYPE = 0.31
RANK_PASSAGE_COSINE = 0.54
RANK_PASSAGE_SCORE = 0.99
RANK_LENGTH = 0.57
RANK_INTRODUCES = -0.3
# Across languages a question shares no words with the passages but may share cognates ("сертификат" /
# "certificate", see ``cognates``): what they add over shared words ranks as shared words do (half that
# weight was tried: no better on any set). Rank only: support is unchanged, because counting cognates there
# answered more unanswerable questions (README, "Answer quality").
RANK_COGNATE = RANK_LEXICAL
TOPIC_MIN_PASSAGES = 3
# A follow-up's words count with its search query's, which carries the earlier question's, at this share of
# their weight.
BORROWED_SHARE = 0.8
# A sentence joins the best one only when it ranks close to it (it answers the question on its own, not
# merely shares its topic). The margins below (in rank units) were chosen with ``switchboard eval --replay``
# on the evaluation's main sets (README, "Answer quality").
JOIN_MARGIN = 0.3
# The sentences right before and after the best one (same passage, same section) join it when they are
# nearly as relevant, when they hold the kind of fact asked for or a detail that completes the answer, or
# when the best one introduces them (ends with a colon): documentation states a rule, then its figure.
NEIGHBOUR_MARGIN = 0.4
DETAIL_MARGIN = 0.5
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 700
SIMILARITY_TEXT_CHARS = 600


def terms(value: str) -> list[str]:
    """Content words (``fold``ed: lower-cased, ё read as е) cut to a 5-letter stem, which is crude but serves
    Russian and English."""
    out = []
    for word in WORD.findall(fold(value)):
        if word in STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        out.append(word[:5] if len(word) > 5 else word)
    return out


@lru_cache(maxsize=READ_CACHE_SIZE)
def term_set(value: str) -> frozenset[str]:
    """``terms`` of a text as a set (kept for recent texts: passages' sentences and headings recur)."""
    return frozenset(terms(value))


@dataclass(slots=True)
class Unit:
    """A sentence or list item of a passage that could answer, with the heading it sits under."""

    passage: int
    position: int
    sentence: str
    heading: str
    kb_id: str
    language: str


@dataclass(slots=True)
class Candidate:
    passage: int
    position: int
    sentence: str
    score: float
    support: float = 0.0
    semantic: float = 0.0
    lexical: float = 0.0
    language: str = "en"
    fits: bool = True  # False: the question asks for a kind of fact (a price, a duration) it does not hold
    heading: str = ""
    carries: bool = False  # the question asks for a kind of fact and the sentence holds it
    section: float = 0.0  # its section heading's similarity to the question
    # Its share of the question's words weighed by their rarity in the whole knowledge base (the ranker's;
    # ``lexical`` weighs them by the turn's passages, as support was fitted).
    rarity: float = 0.0


def split_sentences(passage_text: str) -> list[str]:
    """Sentences that can answer: not the FAQ's own question lines, not headings, without the "A:" label."""
    return [sentence for sentence, _ in split_units(passage_text)]


def split_units(passage_text: str) -> list[tuple[str, str]]:
    """(sentence, heading above it) for each sentence or list item that can answer."""
    units: list[tuple[str, str]] = []
    for line, heading in logical_lines(passage_text):
        for raw in SENTENCE_END.split(line):
            sentence = raw.strip()
            if not sentence or QUESTION_LINE.match(sentence) or QUESTION_ONLY.search(sentence):
                continue
            sentence = ANSWER_PREFIX.sub("", sentence)
            if 15 <= len(sentence) <= 500 and not asks_for_secrets(sentence):
                units.append((sentence, heading))
    return units


def logical_lines(passage_text: str) -> list[tuple[str, str]]:
    """The passage's paragraphs and list items as single lines (documentation wraps its sentences over
    several lines), each with the heading it sits under (Markdown ``#`` or an underlined reStructuredText
    title)."""
    out: list[tuple[str, str]] = []
    heading = ""
    current: list[str] = []

    def flush() -> None:
        if current:
            out.append((" ".join(current), heading))
            current.clear()

    for raw in passage_text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif HEADING_MARK.match(line):
            flush()
            heading = HEADING_MARK.sub("", line).strip(" #")
        elif UNDERLINE.match(line):
            if len(current) == 1:
                heading = current.pop()
            flush()
        elif LIST_MARK.match(line) or line.startswith(("..", "|", ":")):
            flush()
            current.append(line)
        else:
            current.append(line)
    flush()
    return out


# Lines that ask a customer to hand over credentials or payment data (or send them somewhere) are never
# quoted, whatever the knowledge base says: a planted document must not turn the assistant into a phisher.
SECRET = re.compile(
    r"card\s*(?:number|no\b|details|data)|\bcvv2?\b|\bcvc2?\b|\bcsc\b|security code|expir\w* date|\bpin\b"
    r"|pass(?:word|code|phrase)|one[- ]time (?:code|password)|\botp\b|verification code|sms code"
    r"|confirmation code|login details|credentials|bank (?:login|details)|seed phrase|private key"
    r"|номер\w* карт|данн\w* карт|реквизит\w* карт|срок\w* действия карт|cvv|пин[- ]?код|\bпин\b"
    r"|парол\w*|код\w* из (?:смс|sms|сообщени)|смс[- ]?код|код\w* подтвержд\w*|одноразов\w* код"
    r"|кодов\w* слов|логин\w*|учётн\w* данн\w*|учетн\w* данн\w*|секретн\w* (?:код|вопрос|слово)",
    re.IGNORECASE,
)
HAND_OVER = re.compile(
    r"\b(?:send|e-?mail|text|share|provide|give|tell|reply|respond|submit|forward|post|enter|type|confirm"
    r"|verify|dm|message|call)\b"
    r"|отправ\w*|присыл\w*|присла\w*|пришл\w*|сообщ\w*|переда\w*|переш\w*|назов\w*|назва\w*|продикт\w*"
    r"|напиш\w*|укаж\w*|указа\w*|введ\w*|ввест\w*|вводит\w*|подтверд\w*|вышл\w*|скаж\w*",
    re.IGNORECASE,
)
DESTINATION = re.compile(r"https?://|www\.|\b[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ()-]{8,}\d|t\.me/", re.I)
NEVER = re.compile(
    r"\bnever\b|\bdo not\b|\bdon't\b|\bnot ask\b|\bwill not\b|\bwon't\b"
    r"|никогда|никому|\bне\s+(?:\w+\s+){0,2}(?:сообщ|переда|отправ|присыл|называ|говор|ввод|спраш|запраш|попрос)",
    re.IGNORECASE,
)


def asks_for_own_account(question: str) -> bool:
    """The question asks about the customer's own account data (a lookup), not how something works."""
    return ACCOUNT.search(question) is not None and not HOW_TO.match(question)


def asks_for_secrets(sentence: str) -> bool:
    """The sentence asks for a credential or payment data to be handed over (not warns against it)."""
    if not SECRET.search(sentence):
        return False
    if NEVER.search(sentence) and not DESTINATION.search(sentence):
        return False
    return HAND_OVER.search(sentence) is not None or DESTINATION.search(sentence) is not None


def asked_types(question: str) -> list[re.Pattern[str]]:
    """What a sentence that gives each kind of fact the question asks for (a price, a duration) contains."""
    return [gives for asks, gives in ANSWER_TYPES if asks.search(question)]


def answer_bonus(question: str, sentence: str) -> float:
    """Up for a sentence that holds the kind of fact the question asks for (a price, a duration), down for
    one that does not."""
    return type_bonus(asked_types(question), sentence)


def type_bonus(asked: list[re.Pattern[str]], sentence: str) -> float:
    """``answer_bonus`` with the question's ``asked_types`` read once for all its sentences."""
    return sum((TYPE_BONUS if gives.search(sentence) else -TYPE_BONUS for gives in asked), 0.0)


@lru_cache(maxsize=READ_CACHE_SIZE)
def passage_units(passage_text: str) -> tuple[tuple[str, str, str | None], ...]:
    """(sentence, heading above it, the sentence's own language when it tells) for each unit of a passage
    (kept for recent passages)."""
    return tuple(
        (sentence, heading, text_language(sentence)) for sentence, heading in split_units(passage_text)
    )


def units_of(passages: list[tuple[int, str, str, str, str]]) -> list[Unit]:
    """Units of (index, text, title, kb_id, language) passages."""
    units = []
    for index, body, title, kb_id, language in passages:
        for position, (sentence, heading, own) in enumerate(passage_units(body)):
            units.append(Unit(index, position, sentence, heading or title, kb_id, own or language))
    return units


def lexical_support(
    question: str,
    units: list[Unit],
    contexts: dict[int, str],
    read: Callable[[str], frozenset[str]] = term_set,
    corpus: QueryWords | None = None,
) -> list[float]:
    """Each unit's share of the question's (idf-weighted) terms; a term found only in its passage's title
    or heading path counts half. 0 for every unit when the question has no content word. ``read`` gives a
    text's terms (``cognate_keys`` compares words across the alphabet). A term weighs by its rarity among
    the turn's sentences, or in the whole knowledge base when ``corpus`` (retrieval's count of the searched
    query's words) is given."""
    query = read(question)
    if not query or not units:
        return [0.0] * len(units)
    context_terms = {index: read(value) for index, value in contexts.items()}
    unit_terms = [read(u.sentence) for u in units]
    df: dict[str, int]
    if corpus is None or corpus.chunks <= 0:  # nothing counted (no keyword index): the turn's sentences
        counted: Counter[str] = Counter()
        for words in unit_terms:
            counted.update(words & query)
        n, df = len(units), counted
    else:
        counts = corpus_frequencies(corpus)
        n = corpus.chunks
        # A term retrieval did not count is one of its stop words: common.
        df = {term: counts.get(term, n) for term in query}
    # A term no sentence contains weighs like a rare one, not more: questions carry words ("long", "run")
    # that the answering sentence need not repeat.
    weight = {term: math.log(1 + n / (1 + max(1, df[term]))) for term in query}
    total = sum(weight.values())
    out = []
    for unit, words in zip(units, unit_terms, strict=True):
        around = (context_terms.get(unit.passage, frozenset()) | read(unit.heading)) & query
        from_context = around - words
        out.append(
            (sum(weight[t] for t in words & query) + CONTEXT_SHARE * sum(weight[t] for t in from_context))
            / total
        )
    return out


def corpus_frequencies(corpus: QueryWords) -> dict[str, int]:
    """Retrieval's count of the searched words, by the answerer's terms (words that share a term: the most
    common one's)."""
    out: dict[str, int] = {}
    for word, count in corpus.frequencies.items():
        for term in terms(word):
            out[term] = max(out.get(term, 0), count)
    return out


def rank_units(
    question: str,
    units: list[Unit],
    lexical: list[float],
    semantic: list[float] | None,
    topical: list[float] | None = None,
    evidence: dict[int, float] | None = None,
    coverage: float = 0.0,
    cognates: list[float] | None = None,
    rarity: list[float] | None = None,
) -> list[Candidate]:
    """Every unit scored for support (is there an answer at all) and rank (which sentence gives it).

    Support is meaning + shared words + answer type + the question's ``coverage`` (how close the passage
    retrieval ranked first is to it), weighed as fitted (``SUPPORT_*``). Meaning is the sentence's (read
    under its heading) and its section's: a section titled like the question ("Delivery costs", "How long
    do I have to return an item?") vouches for the sentences under it. Rank weighs the same signals as fitted (``RANK_*``) with
    the passage's retrieval ``evidence`` (see ``passage_evidence``); without it, support and a nudge to the
    passages ranked first. Without meaning scores (retrieval could not compare), shared words alone decide,
    as they used to. Shared words rank by ``rarity`` (weighed by the whole knowledge base, see
    ``lexical_support``) when it is given; support weighs them by the turn's passages, as it was fitted."""
    ranked = []
    asked = asked_types(question)
    for i, unit in enumerate(units):
        lex = lexical[i]
        rare = rarity[i] if rarity is not None else lex
        sem = semantic[i] if semantic is not None else 0.0
        bonus = type_bonus(asked, unit.sentence)
        section = topical[i] if topical is not None else sem
        if semantic is None:
            support = lex + (max(0.0, bonus) if lex else 0.0)
        else:
            support = (
                SUPPORT_MEANING * sem
                + SUPPORT_SECTION * section
                + SUPPORT_WORDS * lex
                + SUPPORT_TYPE * (bonus > 0)
                + SUPPORT_COVERAGE * coverage
            )
        if semantic is not None and evidence is not None:
            score = (
                RANK_SEMANTIC * sem
                + RANK_SECTION * section
                + RANK_LEXICAL * rare
                + RANK_TYPE * (bonus > 0)
                - RANK_TYPE * (bonus < 0)
                + evidence.get(unit.passage, 0.0)
                + RANK_LENGTH * math.log(len(unit.sentence)) / 6
                + RANK_INTRODUCES * unit.sentence.rstrip().endswith(":")
                + (RANK_COGNATE * cognates[i] if cognates is not None else 0.0)
            )
        else:
            # A sentence without the kind of fact asked for ranks lower, but its support (whether there is
            # an answer at all) does not drop: "when" also starts questions that want no date.
            score = support + min(0.0, bonus) + RANK_PRIOR / unit.passage
        ranked.append(
            Candidate(
                unit.passage,
                unit.position,
                unit.sentence,
                score,
                support,
                sem,
                lex,
                unit.language,
                bonus >= 0,
                unit.heading,
                bonus > 0,
                section if semantic is not None else 0.0,
                rare,
            )
        )
    ranked.sort(key=lambda c: (-c.score, c.passage, c.position))
    return ranked


def cognate_support(
    question: str, language: str, units: list[Unit], contexts: dict[int, str], lexical: list[float]
) -> list[float] | None:
    """What cognates add to each unit's shared words when it is in another language than the question (0
    for a unit in the question's language); None when every unit is in the question's language."""
    if all(unit.language == language for unit in units):
        return None
    topic = topic_cognates(units, contexts)
    shared = lexical_support(question, units, contexts, lambda text: cognate_keys(text) - topic)
    return [
        max(0.0, cognate - words) if unit.language != language else 0.0
        for unit, cognate, words in zip(units, shared, lexical, strict=True)
    ]


def topic_cognates(units: list[Unit], contexts: dict[int, str]) -> frozenset[str]:
    """Cognate keys found in more than half of the turn's passages (three or more): the knowledge base's
    topic ("documentation" across a documentation site), which tells no sentence from another."""
    found: dict[int, set[str]] = {index: set(cognate_keys(value)) for index, value in contexts.items()}
    for unit in units:
        found.setdefault(unit.passage, set()).update(cognate_keys(unit.sentence))
    if len(found) < TOPIC_MIN_PASSAGES:
        return frozenset()
    counts = Counter(key for keys in found.values() for key in keys)
    return frozenset(key for key, count in counts.items() if count > len(found) / 2)


def rank_sentences(
    question: str, passages: list[tuple[int, str]], contexts: dict[int, str] | None = None
) -> list[Candidate]:
    """Sentences ranked by shared words only (no embedding space at hand)."""
    units = units_of([(index, body, "", "", text_language(body) or "en") for index, body in passages])
    return rank_units(question, units, lexical_support(question, units, contexts or {}), None)


def compose(candidates: list[Candidate], min_support: float) -> list[Candidate]:
    """Nothing when no sentence has enough support (the passages do not answer); else the best-ranked
    sentence and the next ones ranked close to it, from the same passage or at least as close in meaning (so
    an answer never trails a sentence about something else)."""
    supported = [c for c in candidates if c.support >= min_support]
    if not supported:
        return []
    best = candidates[0]
    chosen: list[Candidate] = []
    length = 0
    for candidate in candidates:
        if len(chosen) >= MAX_SENTENCES or candidate.score < best.score - JOIN_MARGIN:
            break
        if length + len(candidate.sentence) > MAX_ANSWER_CHARS and chosen:
            break
        if any(candidate.sentence == c.sentence for c in chosen):
            continue
        if chosen and not candidate.fits:
            continue
        if chosen and candidate.passage != best.passage and candidate.semantic < best.semantic:
            continue
        chosen.append(candidate)
        length += len(candidate.sentence)
    chosen += neighbours(best, candidates, chosen, MAX_ANSWER_CHARS - length)
    chosen.sort(key=lambda c: (c.passage, c.position))
    return chosen


def neighbours(
    best: Candidate, candidates: list[Candidate], chosen: list[Candidate], room: int
) -> list[Candidate]:
    """The sentences right after and before the best one that complete it (see ``NEIGHBOUR_MARGIN``), each
    said once: a passage repeated in another document may have put the same sentence among ``chosen``."""
    at = {(c.passage, c.position): c for c in candidates}
    taken = {(c.passage, c.position) for c in chosen}
    said = {c.sentence for c in chosen}
    out: list[Candidate] = []
    for offset in (1, -1):
        near = at.get((best.passage, best.position + offset))
        if near is None or (near.passage, near.position) in taken or near.heading != best.heading:
            continue
        if len(near.sentence) > room or near.sentence in said:
            continue
        introduced = offset == 1 and best.sentence.rstrip().endswith(":")
        close = near.score >= best.score - NEIGHBOUR_MARGIN
        detail = near.fits and DETAIL.search(near.sentence) is not None
        if introduced or close or near.carries or (detail and near.score >= best.score - DETAIL_MARGIN):
            out.append(near)
            said.add(near.sentence)
            room -= len(near.sentence)
    return out


def render(language: str, chosen: list[Candidate]) -> str:
    """The chosen sentences with their passage numbers; sentences in another language than the customer's
    are quoted after a lead-in in the customer's language that says which language the source speaks."""
    return "".join(render_parts(language, chosen))


def render_parts(language: str, chosen: list[Candidate]) -> list[str]:
    """``render``'s answer in pieces (a sentence, the lead-in, a quotation), streamed one by one."""
    own = [c for c in chosen if c.language == language]
    foreign = [c for c in chosen if c.language != language]
    parts = [f"{_separator(own[i - 1], c) if i else ''}{c.sentence} [{c.passage}]" for i, c in enumerate(own)]
    if foreign:
        lead = text(language, "quoted_sources", source=language_name(language, foreign[0].language))
        parts.append(f"{chr(10) * 2 if own else ''}{lead}")
        parts += [f"\n«{c.sentence}» [{c.passage}]" for c in foreign]
    return parts


def _separator(before: Candidate, sentence: Candidate) -> str:
    """A list item starts its own line (the widget and messengers keep line breaks); sentences run on."""
    return "\n" if LIST_MARK.match(sentence.sentence) or LIST_MARK.match(before.sentence) else " "


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
        choice = await choose(request)
        if not choice.chosen:
            yield TextDelta(text(request.language, "kb_down" if request.kb_unavailable else "no_answer"))
            yield AnswerVerdict(no_answer=True, support=choice.support)
            return
        for part in render_parts(request.language, choice.chosen):
            yield TextDelta(part)
        for part in choice.unanswered:
            yield TextDelta("\n\n" + text(request.language, "part_unanswered", part=part))
        yield AnswerVerdict(no_answer=False, support=choice.support)

    async def _route_to_tools(self, request: GenerationRequest) -> tuple[list[ToolEvent], str] | None:
        language = request.language
        order = ORDER.search(request.question)
        wants_account = asks_for_own_account(request.question)
        if order is None and not wants_account:
            return None
        if request.tools_unavailable:
            return [], text(language, "tools_down")
        if not request.verified:
            return [], text(language, "sign_in")  # no personal-data tool is bound for this user
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


@dataclass(slots=True)
class Reading:
    """What the answerer reads of a turn before choosing: the question as search read it (``read_as``), the
    passages' units, their shared words with the question (a follow-up's with the earlier question's too)
    and, per query (the question, a follow-up's search query, then the parts of a two-part question), each
    unit's similarity and its section's."""

    question: str
    units: list[Unit]
    contexts: dict[int, str]
    lexical: list[float]
    queries: list[str]
    parts: list[str]
    meaning: tuple[list[list[float]], list[list[float]]] | None
    evidence: dict[int, float] | None  # each passage's retrieval evidence (``passage_evidence``)
    coverage: float  # how close the passage retrieval ranked first is to the question (``coverage``)
    cognates: list[float] | None  # what cognates add to shared words across languages (``cognate_support``)
    rarity: list[float] | None  # shared words weighed by the whole knowledge base (None: not known)
    corpus: QueryWords | None  # retrieval's count of the searched words


async def read(request: GenerationRequest) -> Reading | None:
    """The turn's ``Reading``; None when its passages hold no sentence that could answer."""
    units = units_of(
        [
            (
                p.index,
                p.hit.text,
                p.hit.heading_path[-1] if p.hit.heading_path else p.hit.title,
                p.hit.kb_id,
                p.hit.language or text_language(p.hit.text) or "en",
            )
            for p in request.passages
        ]
    )
    if not units:
        return None
    contexts = _contexts(request)
    question, search_query = read_as(request)
    lexical = shared_words(question, search_query, units, contexts)
    corpus = request.query_words
    rarity = shared_words(question, search_query, units, contexts, corpus) if corpus else None
    follow_up = search_query != question
    # A follow-up's cognates are read off its search query alone (its own words and the earlier question's):
    # "а как его потом удалить?" has one, and "delete" would then be all a sentence needs.
    cognates = cognate_support(search_query, request.language, units, contexts, lexical)
    parts = question_parts(question)
    queries = [question, *([search_query] if follow_up else [])]
    meaning = await _meaning(request, units, [*queries, *parts])
    closest = max((max(row) for row in meaning[0][: len(queries)]), default=0.0) if meaning else 0.0
    cosines = passage_cosines(request)
    return Reading(
        question,
        units,
        contexts,
        lexical,
        queries,
        parts,
        meaning,
        passage_evidence(request, cosines),
        closest if cosines is None else cosines[min(cosines)],
        cognates,
        rarity,
        corpus,
    )


def shared_words(
    question: str,
    search_query: str,
    units: list[Unit],
    contexts: dict[int, str],
    corpus: QueryWords | None = None,
) -> list[float]:
    """``lexical_support`` of the question; a follow-up ("and to Kazakhstan?", whose search query differs)
    is read with the earlier question's words too, at ``BORROWED_SHARE``."""
    lexical = lexical_support(question, units, contexts, corpus=corpus)
    if search_query == question:
        return lexical
    borrowed = lexical_support(search_query, units, contexts, corpus=corpus)
    return [max(own, BORROWED_SHARE * other) for own, other in zip(lexical, borrowed, strict=True)]


def read_as(request: GenerationRequest) -> tuple[str, str]:
    """The question and the search query as retrieval searched them: a misspelt word ("cancle a bulid")
    is read as retrieval corrected it ("cancel a build"), so it meets the passages' words and meaning as the
    search did. Retrieval corrects the search query; it is the question itself unless this is a follow-up."""
    question, search_query = request.question, request.search_query
    if request.corrected_query is None:
        return question, search_query
    return (request.corrected_query if search_query == question else question), request.corrected_query


def rank_question(reading: Reading) -> list[Candidate]:
    """The units ranked for the whole question (its best reading over the question and a follow-up's
    search query)."""
    units, lexical = reading.units, reading.lexical
    if reading.meaning is None:
        return rank_units(reading.question, units, lexical, None)
    sentences, sections = reading.meaning
    n = len(reading.queries)
    semantic = [max(row[i] for row in sentences[:n]) for i in range(len(units))]
    topical = [max(row[i] for row in sections[:n]) for i in range(len(units))]
    return rank_units(
        reading.question,
        units,
        lexical,
        semantic,
        topical,
        reading.evidence,
        reading.coverage,
        reading.cognates,
        reading.rarity,
    )


@dataclass(slots=True)
class Choice:
    """What answers a turn: the chosen sentences (none: no answer), the best support found, and the parts of
    a two-part message no sentence has enough support for when only the other part is answered."""

    chosen: list[Candidate]
    support: float | None = None
    unanswered: list[str] = field(default_factory=list)


async def choose(request: GenerationRequest) -> Choice:
    """The sentences that answer the question (none when no sentence has enough support), and the best
    support found. A question that asks two things ("how much is it, and is delivery free?") is answered
    part by part too, each part's best ranked sentence joining the answer; when only one part has an
    answer, that part is answered rather than the whole message refused, and the answer says which part it
    is not sure of (a sentence that joined the answered part may still cover it)."""
    reading = await read(request)
    if reading is None:
        return Choice([])
    ranked = rank_question(reading)
    best = max(c.support for c in ranked)  # a reading has units, so some are ranked
    if reading.meaning is None:
        return Choice(compose(ranked, request.lexical_min_support), best)
    chosen = compose(ranked, threshold(request, ranked))
    whole = bool(chosen)
    unanswered: list[str] = []
    sentences, sections = reading.meaning
    taken = {(c.passage, c.position) for c in chosen}
    room = MAX_ANSWER_CHARS - sum(len(c.sentence) for c in chosen)
    for k, part in enumerate(reading.parts):
        offset = len(reading.queries) + k
        lexical = lexical_support(part, reading.units, reading.contexts)
        part_ranked = rank_units(
            part,
            reading.units,
            lexical,
            sentences[offset],
            sections[offset],
            reading.evidence,
            reading.coverage,
            cognate_support(part, request.language, reading.units, reading.contexts, lexical),
            lexical_support(part, reading.units, reading.contexts, corpus=reading.corpus)
            if reading.corpus
            else None,
        )
        answer = compose(part_ranked, threshold(request, part_ranked))
        best = max(best, *(c.support for c in part_ranked))
        if not answer:
            unanswered.append(part)
            continue  # this part has no answer of its own
        if any((c.passage, c.position) in taken for c in answer):
            continue  # the answer already says it
        for candidate in answer:
            if len(candidate.sentence) <= room and all(c.sentence != candidate.sentence for c in chosen):
                chosen.append(candidate)
                taken.add((candidate.passage, candidate.position))
                room -= len(candidate.sentence)
    chosen.sort(key=lambda c: (c.passage, c.position))
    # Only when the message as a whole found no answer: an answer to the whole may cover a part too.
    return Choice(chosen, best, unanswered if chosen and not whole else [])


def passage_cosines(request: GenerationRequest) -> dict[int, float] | None:
    """Each passage's cosine with the query as retrieval measured it; a passage only the keyword search
    found gets the lowest cosine measured (it was not in the vector search's top). None when retrieval
    measured none."""
    known = [p.hit.vector_score for p in request.passages if p.hit.vector_score is not None]
    if not known:
        return None
    floor = min(known)
    return {
        p.index: p.hit.vector_score if p.hit.vector_score is not None else floor for p in request.passages
    }


def passage_evidence(request: GenerationRequest, cosines: dict[int, float] | None) -> dict[int, float] | None:
    """Each passage's retrieval evidence for ranking its sentences: its cosine with the query
    (``passage_cosines``) and its fused retrieval score relative to the turn's best (None without cosines)."""
    if cosines is None:
        return None
    top = max(p.hit.score for p in request.passages) or 1.0
    return {
        p.index: RANK_PASSAGE_COSINE * cosines[p.index] + RANK_PASSAGE_SCORE * p.hit.score / top
        for p in request.passages
    }


def threshold(request: GenerationRequest, ranked: list[Candidate]) -> float:
    """The least support that answers: ``min_support``, less the cross-language discount when the
    best-ranked sentence is in another language than the question."""
    least = request.min_support
    if ranked and ranked[0].language != request.language:
        # Across languages there are no shared words and the cosine runs lower for the same meaning.
        least -= request.cross_language_discount
    return least


def question_parts(question: str) -> list[str]:
    """The questions a customer asked in one message, when there are two (else none)."""
    return split_questions(question, terms)


async def _meaning(
    request: GenerationRequest, units: list[Unit], queries: list[str]
) -> tuple[list[list[float]], list[list[float]]] | None:
    """Per query, each unit's similarity to it and its section heading's, in its knowledge base's embedding
    space; None when no comparison is available."""
    if request.similarity is None:
        return None
    by_kb: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        by_kb.setdefault(unit.kb_id, []).append(i)
    sentences = [[0.0] * len(units) for _ in queries]
    sections = [[0.0] * len(units) for _ in queries]
    for kb_id, members in by_kb.items():
        # The heading tells what a list item is about ("Delivery: - Courier: 349 ₽").
        texts = [_with_heading(units[i]) for i in members]
        headings = list(dict.fromkeys(units[i].heading for i in members if units[i].heading))
        rows = await request.similarity(kb_id, queries, texts + headings)
        if rows is None:
            return None
        for q, row in enumerate(rows):
            heading_scores = {heading: row[len(texts) + j] for j, heading in enumerate(headings)}
            for column, i in enumerate(members):
                sentences[q][i] = row[column]
                sections[q][i] = heading_scores.get(units[i].heading, row[column])
    return sentences, sections


def _with_heading(unit: Unit) -> str:
    value = f"{unit.heading}: {unit.sentence}" if unit.heading else unit.sentence
    return value[:SIMILARITY_TEXT_CHARS]


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
    reply = text(
        language, "order_status", number=order["number"], status=order_state(language, order["status"])
    )
    if order.get("tracking_number"):
        reply += text(language, "order_tracking", tracking=order["tracking_number"])
    if order.get("tracking_url"):
        reply += text(language, "order_tracking_url", url=order["tracking_url"])
    return reply
