"""Webhook signature checks shared by the ticketing and messenger plugins (constant-time comparisons)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from switchboard_shared.errors import AppError, ErrorCode


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def check_hex_signature(header_value: str | None, *, secret: str, body: bytes, header: str) -> None:
    """``sha256=<hex>`` over the raw body (WhatsApp ``X-Hub-Signature-256``, Jira ``X-Hub-Signature``)."""
    if not header_value:
        raise AppError(ErrorCode.UNAUTHORIZED, f"The {header} header is missing.")
    method, _, presented = header_value.partition("=")
    if method.lower() != "sha256" or not presented:
        raise AppError(ErrorCode.UNAUTHORIZED, f"The {header} header is not sha256=<hex>.")
    expected = hmac_sha256(secret, body).hex()
    if not hmac.compare_digest(expected, presented.strip().lower()):
        raise AppError(ErrorCode.FORBIDDEN, "The webhook signature does not match.")


def check_base64_signature(presented: str | None, *, secret: str, message: bytes, header: str) -> None:
    if not presented:
        raise AppError(ErrorCode.UNAUTHORIZED, f"The {header} header is missing.")
    expected = base64.b64encode(hmac_sha256(secret, message)).decode()
    if not hmac.compare_digest(expected, presented.strip()):
        raise AppError(ErrorCode.FORBIDDEN, "The webhook signature does not match.")


def check_shared_secret(presented: str | None, *, secret: str, header: str) -> None:
    if not presented:
        raise AppError(ErrorCode.UNAUTHORIZED, f"The {header} header is missing.")
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise AppError(ErrorCode.FORBIDDEN, f"The {header} header does not match.")
