"""Which public paths go where (``contracts.routes``), which a widget key may use, and each route's timeout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from switchboard_shared.contracts.routes import PUBLIC_AREA_OWNERS, WEBHOOK_AREAS

PUBLIC_PREFIX = "/v1/"
INTERNAL_PREFIX = b"/internal/v1/"

# The widget reaches only the customer's side of a conversation (never the operator actions: owner, status,
# operator-messages) and the assistant's public greeting; nothing else.
WIDGET_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/v1/conversations/?$")),
    ("GET", re.compile(r"^/v1/conversations/?$")),
    ("GET", re.compile(r"^/v1/conversations/[^/]+/?$")),
    ("POST", re.compile(r"^/v1/conversations/[^/]+/(messages|feedback|csat|handoff)/?$")),
    # The assistant's name and greeting, shown before the first message.
    ("GET", re.compile(r"^/v1/assistant/greeting/?$")),
)
MESSAGE_TURN = re.compile(r"^/v1/conversations/[^/]+/messages/?$")
LONG_RUNNING = (re.compile(r"^/v1/kbs/[^/]+/files/?$"), re.compile(r"^/v1/analytics/export(/|$)"))


class Timeout(Enum):
    DEFAULT = "default"
    TURN = "turn"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    area: str
    upstream: str
    webhook: bool
    message_turn: bool
    timeout: Timeout


def area_of(path: str) -> str:
    rest = path[len(PUBLIC_PREFIX) :]
    slash = rest.find("/")
    return rest if slash < 0 else rest[:slash]


def safe_path(path: str) -> bool:
    """No dot segments and no empty segments: the forwarded path must stay under the owner's area."""
    segments = path.split("/")[1:]
    return all(segment not in {".", ".."} for segment in segments) and "//" not in path


def resolve(method: str, path: str) -> ProxyRoute | None:
    """The proxy route of a public path, or None when the gateway itself (or nobody) serves it."""
    area = area_of(path)
    upstream = PUBLIC_AREA_OWNERS.get(area)
    if upstream is None:
        return None
    turn = method == "POST" and MESSAGE_TURN.match(path) is not None
    if turn:
        timeout = Timeout.TURN
    elif any(pattern.match(path) for pattern in LONG_RUNNING):
        timeout = Timeout.LONG
    else:
        timeout = Timeout.DEFAULT
    return ProxyRoute(area, upstream, area in WEBHOOK_AREAS, turn, timeout)


def widget_allowed(method: str, path: str) -> bool:
    return any(method == allowed and pattern.match(path) for allowed, pattern in WIDGET_ROUTES)


def internal_target(raw_path: bytes, query_string: bytes) -> bytes:
    """``/v1/<area>/<rest>?q`` → ``/internal/v1/<area>/<rest>?q`` (the raw, still-encoded path)."""
    target = INTERNAL_PREFIX + raw_path[len(PUBLIC_PREFIX) :]
    return target + b"?" + query_string if query_string else target
