"""What the assistant says in its own words (not from the knowledge base), per language."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "no_answer": "I could not find this in our knowledge base, so I would rather not guess. "
        "Would you like me to connect you with a person from our team?",
        "kb_down": "Our knowledge base is unavailable right now, so I cannot answer this reliably. "
        "I can connect you with a person from our team if you like.",
        "handoff_started": "I am connecting you with a person from our team. They will reply here shortly.",
        "handoff_failed": "I could not reach our support team right now. Please try again in a few minutes.",
        "tools_down": "I cannot reach our account and order systems right now, so I cannot look this up. "
        "Please try again later, or I can connect you with a person.",
        "sign_in": "For your privacy I can only look up account and order details after you sign in. "
        "Please sign in, or I can connect you with a person.",
        "order_status": "Order {number}: {status}.",
        "order_tracking": " Tracking number: {tracking}.",
        "order_tracking_url": " Track it here: {url}",
        "order_not_found": "I could not find order {number} on your account. Please check the number.",
        "customer": "Your account: {name}{email}.",
        "ticket_created": "I have opened a ticket for you ({ticket}).",
        "greeting": "Hello! How can I help you today?",
        "quoted_sources": "Our knowledge base says this in {source}:",
        "part_unanswered": "I am not sure our knowledge base answers this part of your question: «{part}». "
        "I can connect you with a person from our team.",
    },
    "ru": {
        "no_answer": "Я не нашёл ответа в нашей базе знаний и не хочу гадать. "
        "Хотите, я подключу специалиста нашей поддержки?",
        "kb_down": "База знаний сейчас недоступна, поэтому я не могу ответить надёжно. "
        "Могу подключить специалиста поддержки.",
        "handoff_started": "Подключаю специалиста поддержки. Он ответит здесь в ближайшее время.",
        "handoff_failed": "Сейчас не удаётся связаться с поддержкой. Пожалуйста, попробуйте через несколько минут.",
        "tools_down": "Системы заказов и учётных записей сейчас недоступны, поэтому я не могу это проверить. "
        "Попробуйте позже или я подключу специалиста.",
        "sign_in": "Ради вашей безопасности я показываю данные аккаунта и заказов только после входа. "
        "Пожалуйста, войдите в аккаунт, или я подключу специалиста.",
        "order_status": "Заказ {number}: {status}.",
        "order_tracking": " Трек-номер: {tracking}.",
        "order_tracking_url": " Отследить: {url}",
        "order_not_found": "Не удалось найти заказ {number} в вашем аккаунте. Проверьте номер, пожалуйста.",
        "customer": "Ваш аккаунт: {name}{email}.",
        "ticket_created": "Я создал обращение ({ticket}).",
        "greeting": "Здравствуйте! Чем могу помочь?",
        "quoted_sources": "В нашей базе знаний об этом написано {source}:",
        "part_unanswered": "Не уверен, что в нашей базе знаний есть ответ на эту часть вопроса: «{part}». "
        "Могу подключить специалиста поддержки.",
    },
}


# The name of a source's language as it reads in the customer's language ("written in English").
LANGUAGE_IN: dict[str, dict[str, str]] = {
    "en": {"en": "English", "ru": "Russian"},
    "ru": {"en": "по-английски", "ru": "по-русски"},
}

# Order states as CRMs report them, in the customer's words; an unknown state is shown as the CRM wrote it.
ORDER_STATES: dict[str, dict[str, str]] = {
    "en": {
        "ready_for_pickup": "ready for pickup",
        "in_transit": "in transit",
        "out_for_delivery": "out for delivery",
        "on_hold": "on hold",
        "canceled": "cancelled",
    },
    "ru": {
        "new": "новый",
        "created": "создан",
        "pending": "ожидает обработки",
        "processing": "в обработке",
        "confirmed": "подтверждён",
        "paid": "оплачен",
        "packed": "собран",
        "shipped": "передан в доставку",
        "in_transit": "в пути",
        "out_for_delivery": "передан курьеру",
        "ready_for_pickup": "ждёт в пункте выдачи",
        "delivered": "доставлен",
        "completed": "выполнен",
        "cancelled": "отменён",
        "canceled": "отменён",
        "returned": "возвращён",
        "refunded": "деньги возвращены",
        "on_hold": "приостановлен",
        "failed": "не удался",
    },
}


def order_state(language: str, state: str) -> str:
    key = state.strip().lower().replace(" ", "_").replace("-", "_")
    return (ORDER_STATES.get(language) or {}).get(key, state)


def language_name(language: str, of: str) -> str:
    return (LANGUAGE_IN.get(language) or LANGUAGE_IN["en"]).get(of, of)


def text(language: str, key: str, **values: object) -> str:
    table = TEXTS.get(language) or TEXTS["en"]
    return (table.get(key) or TEXTS["en"][key]).format(**values)
