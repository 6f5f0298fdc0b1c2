"""Making and hashing API keys: ``pk_`` widget, ``sk_`` server, ``ak_`` admin, then 40 random characters."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from enum import StrEnum

ALPHABET = string.ascii_letters + string.digits
KEY_BODY = re.compile("[A-Za-z0-9]*")
RANDOM_CHARS = 40  # ≈ 238 bits
DISPLAY_CHARS = 10


class KeyScope(StrEnum):
    WIDGET = "widget"
    SERVER = "server"
    ADMIN = "admin"


PREFIX_BY_SCOPE = {KeyScope.WIDGET: "pk_", KeyScope.SERVER: "sk_", KeyScope.ADMIN: "ak_"}
SCOPE_BY_PREFIX = {prefix: scope for scope, prefix in PREFIX_BY_SCOPE.items()}


def generate_key(scope: KeyScope) -> str:
    return PREFIX_BY_SCOPE[scope] + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))


def hash_key(key: str) -> str:
    """A fast hash is enough here: keys carry ~238 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return (
        len(value) == 3 + RANDOM_CHARS
        and value[:3] in SCOPE_BY_PREFIX
        and KEY_BODY.fullmatch(value, 3) is not None
    )


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]


def generate_identity_secret() -> str:
    return "idsec_" + secrets.token_urlsafe(32)
