"""PII redaction for logs and analytics: emails, IBANs, card-like and phone numbers."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Numbers as people type them, in Russian and English alike: groups separated by spaces, dashes or dots.
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ .-]?[A-Z0-9]){11,30}\b")
CARD_RE = re.compile(r"\b(?:\d[ .-]?){13,19}\b")
PHONE_RE = re.compile(r"(?<![\w/])\+?\d[\d ().\-]{7,}\d(?![\w/])")
# Dates are not phone numbers: 2024-05-01, 01.05.2024.
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}")
# Nor are IPv4 addresses (127.0.0.1 in a connection error): logs must still say which host failed.
IPV4_RE = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}")
SECRET_KEYS = ("password", "secret", "token", "authorization", "api_key", "apikey", "cookie")


def redact_text(text: str) -> str:
    text = EMAIL_RE.sub("[email]", text)
    text = IBAN_RE.sub("[iban]", text)
    text = CARD_RE.sub("[card]", text)
    return PHONE_RE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    return found if DATE_RE.fullmatch(found) or IPV4_RE.fullmatch(found) else "[phone]"


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


PSEUDONYM_RE = re.compile(r"^u_[0-9a-f]{24}$")


def tenant_pseudonym(tenant_id: str, end_user_id: str, *, salt: str) -> str:
    """An end user's pseudonym under the tenant's own salt (derived from the fleet's): the same customer id in
    two tenants gives unrelated pseudonyms, and none can be reversed without the fleet's salt. A value that
    already is a pseudonym is returned as it is, so applying it twice changes nothing."""
    if PSEUDONYM_RE.match(end_user_id):
        return end_user_id
    return "u_" + pseudonymise(end_user_id, salt=pseudonymise(tenant_id, salt=salt))
