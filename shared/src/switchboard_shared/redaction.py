"""PII redaction for logs and analytics: emails, phone numbers and card-like numbers."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
CARD_RE = re.compile(r"\b(?:\d[ -]?){13,19}\b")
PHONE_RE = re.compile(r"(?<![\w/])\+?\d[\d ()\-]{7,}\d(?![\w/])")
SECRET_KEYS = ("password", "secret", "token", "authorization", "api_key", "apikey", "cookie")


def redact_text(text: str) -> str:
    text = EMAIL_RE.sub("[email]", text)
    text = CARD_RE.sub("[card]", text)
    return PHONE_RE.sub("[phone]", text)


def redact_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if isinstance(value, str) and any(marker in lowered for marker in SECRET_KEYS):
        return "[secret]"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


def pseudonymise(value: str, *, salt: str) -> str:
    """A stable, non-reversible id for an end user (HMAC-SHA256, truncated)."""
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:24]
