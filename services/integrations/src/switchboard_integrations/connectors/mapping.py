"""Field mapping from an external system's JSON to our contract models, tolerant of sloppy data:
dotted paths, numbers as strings, ids as numbers; a missing required field is a clear upstream error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from switchboard_shared.errors import AppError, ErrorCode

log = structlog.get_logger(__name__)
_MISSING = object()


def dig(payload: Any, path: str) -> Any:
    """``dig({"a": {"b": [1, 2]}}, "a.b.1") == 2``; absent → None."""
    current = payload
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            return None
        if current is _MISSING:
            return None
    return current


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def as_float(value: Any, *, field: str) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ".").replace(" ", ""))
        except ValueError:
            pass
    log.warning("mapping_bad_number", field=field, value_type=type(value).__name__)
    return None


def as_int(value: Any, *, field: str, default: int) -> int:
    number = as_float(value, field=field)
    return int(number) if number is not None and number >= 0 else default


def as_datetime(value: Any, *, field: str) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            log.warning("mapping_bad_datetime", field=field)
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def required_text(payload: Any, path: str, *, system: str, what: str) -> str:
    value = as_text(dig(payload, path))
    if value is None:
        raise AppError(
            ErrorCode.UPSTREAM_ERROR,
            f"The {system} answer for a {what} lacks the field {path!r}.",
            details={"field": path},
        )
    return value
