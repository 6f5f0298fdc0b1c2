"""The channel's own replies (``/start``, non-text messages, edits) in the customer's language, and how that
language is told: the script of what they wrote, else the messenger's language setting (Telegram's
``language_code``), else the language this chat last wrote in."""

from __future__ import annotations

from switchboard_shared.language import detect_language

DEFAULT_LANGUAGE = "en"
SYSTEM_TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "en": "Hello! I am the support assistant. Ask me anything about your orders or our service.",
        "ru": "Здравствуйте! Я ассистент поддержки. Спросите меня о ваших заказах или о нашем сервисе.",
    },
    "unsupported": {
        "en": "Sorry, I can only read text messages. Please write your question as text.",
        "ru": "Извините, я понимаю только текстовые сообщения. Напишите, пожалуйста, вопрос текстом.",
    },
    "edited": {
        "en": "I saw you edited a message; edits are not processed. Please send your question again.",
        "ru": "Вы изменили сообщение, а изменения я не обрабатываю. Отправьте, пожалуйста, вопрос ещё раз.",
    },
}


def language_of_text(text: str) -> str | None:
    """The fleet's one language detection (``switchboard_shared.language``), or None when the text has too
    few letters to tell (``/start``, ``ok``, an emoji)."""
    if sum(1 for ch in text if ch.isalpha()) < 3:
        return None
    return detect_language(text)


def normalise_language(code: str | None) -> str | None:
    """``ru-RU`` → ``ru``; only languages the system texts speak."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in SYSTEM_TEXTS["start"] else None


def system_text(kind: str, language: str | None, overrides: dict[str, dict[str, str]] | None = None) -> str:
    """The ``kind`` reply in ``language``, a tenant/fleet override first, English when the language is unknown."""
    catalogue = {**SYSTEM_TEXTS.get(kind, {}), **((overrides or {}).get(kind) or {})}
    lang = language if language in catalogue else DEFAULT_LANGUAGE
    return catalogue.get(lang) or catalogue[DEFAULT_LANGUAGE]
