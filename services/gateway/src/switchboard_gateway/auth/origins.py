"""Origin patterns of widget keys: exact origins, a port wildcard (``http://localhost:*``) or a
subdomain wildcard (``https://*.example.com``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ORIGIN_RE = re.compile(r"^(https?)://(\*\.)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:(\d{1,5}|\*))?$")


def normalise_pattern(pattern: str) -> str:
    """Lower-case and validate one allowed-origin pattern; raises ValueError when it is not an origin."""
    value = pattern.strip().rstrip("/").lower()
    if not ORIGIN_RE.match(value):
        raise ValueError(f"not an origin pattern: {pattern!r} (scheme://host[:port], * allowed)")
    return value


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str, patterns: tuple[str, ...]) -> bool:
    origin = origin.lower()
    match = ORIGIN_RE.match(origin)
    if not match or match.group(2) or match.group(5) == "*":
        return False
    scheme, host, port = match.group(1), match.group(3), match.group(5)
    for pattern in patterns:
        if pattern == origin:
            return True
        pm = ORIGIN_RE.match(pattern)
        if not pm or pm.group(1) != scheme:
            continue
        p_wild_sub, p_host, p_port = pm.group(2), pm.group(3), pm.group(5)
        if p_port != "*" and p_port != port:
            continue
        if p_wild_sub:
            if host.endswith("." + p_host):
                return True
        elif p_host == host:
            return True
    return False
