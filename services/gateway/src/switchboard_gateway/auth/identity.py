"""Widget end-user identity tokens: the tenant's backend signs the user id, the gateway verifies it.

Format (``v1``), three dot-separated parts::

    v1.<payload>.<signature>

- ``payload`` is base64url (no padding) of the JSON object ``{"sub": "<user id>", "exp": <unix seconds>}``
  (optional ``"iat"``); ``sub`` is 1-200 printable characters. Optional claims name the customer in the
  tenant's CRM: ``"email"`` (an e-mail address) and ``"crm_id"`` (the CRM's customer id); without them the
  CRM is asked for the customer whose id is ``sub``. They are the only way to say who the customer is:
  an e-mail or CRM id in a request body is refused.
- ``signature`` is base64url (no padding) of ``HMAC-SHA256(key=<tenant identity secret>,
  msg="v1." + payload)`` — the bytes of the first two parts exactly as sent.

The widget sends the token in the ``X-End-User-Token`` header. A token past ``exp`` (with a little clock
skew allowed), with a bad signature or a malformed part is refused with 401; it never degrades silently
to an anonymous user. Example in Python: ``sign_identity(secret, "cust_42", ttl_seconds=3600)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import orjson

VERSION = "v1"
CLOCK_SKEW_SECONDS = 30
MAX_TOKEN_CHARS = 1024
MAX_SUBJECT_CHARS = 200


class InvalidIdentity(Exception):
    """The token is malformed, forged or expired (the message says which, for the client)."""


MAX_EMAIL_CHARS = 320
IDENTITY_CLAIMS = ("email", "crm_id")


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    user_id: str
    expires_at: int
    email: str | None = None
    crm_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, signed_part: str) -> str:
    return _b64(hmac.new(secret.encode(), signed_part.encode("ascii"), hashlib.sha256).digest())


def valid_subject(user_id: str) -> bool:
    return 0 < len(user_id) <= MAX_SUBJECT_CHARS and user_id.isprintable()


def sign_identity(
    secret: str,
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    now: float | None = None,
    claims: dict[str, str] | None = None,
) -> str:
    """What a tenant's backend does: sign ``user_id`` (and optional ``email`` / ``crm_id`` claims) for
    ``ttl_seconds``."""
    if not valid_subject(user_id):
        raise ValueError("user_id must be 1-200 printable characters")
    extra = dict(claims or {})
    unknown = set(extra) - set(IDENTITY_CLAIMS)
    if unknown:
        raise ValueError(f"unknown identity claims: {sorted(unknown)}")
    issued = int(now if now is not None else time.time())
    payload = _b64(orjson.dumps({"sub": user_id, "iat": issued, "exp": issued + ttl_seconds, **extra}))
    signed_part = f"{VERSION}.{payload}"
    return f"{signed_part}.{_signature(secret, signed_part)}"


def verify_identity(secret: str, token: str, *, now: float | None = None) -> VerifiedIdentity:
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidIdentity("The identity token is too long.")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidIdentity("The identity token is malformed (expected v1.<payload>.<signature>).")
    signed_part = f"{parts[0]}.{parts[1]}"
    try:
        expected = _signature(secret, signed_part)
    except UnicodeEncodeError as exc:
        raise InvalidIdentity("The identity token is malformed.") from exc
    if not hmac.compare_digest(expected.encode(), parts[2].encode("ascii", "replace")):
        raise InvalidIdentity("The identity token's signature does not match.")
    try:
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidIdentity("The identity token's payload is not valid JSON.") from exc
    if not isinstance(claims, dict):
        raise InvalidIdentity("The identity token's payload is not an object.")
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not valid_subject(subject):
        raise InvalidIdentity("The identity token's subject is missing or invalid.")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise InvalidIdentity("The identity token has no expiry.")
    current = now if now is not None else time.time()
    if expires + CLOCK_SKEW_SECONDS < current:
        raise InvalidIdentity("The identity token has expired.")
    email, crm_id = claims.get("email"), claims.get("crm_id")
    if email is not None and not (isinstance(email, str) and _valid_email(email)):
        raise InvalidIdentity("The identity token's email claim is not an e-mail address.")
    if crm_id is not None and not (isinstance(crm_id, str) and valid_subject(crm_id)):
        raise InvalidIdentity("The identity token's crm_id claim must be 1-200 printable characters.")
    return VerifiedIdentity(subject, expires, email=email, crm_id=crm_id)


def _valid_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain) and len(value) <= MAX_EMAIL_CHARS and value.isprintable()
