"""The one address guard of every URL the fleet reaches on a tenant's behalf (URL and fsspec sources,
connector base URLs, provider base URLs): the host is resolved and refused when any of its addresses is
loopback, private, link-local or otherwise not globally routable, unless the operator allow-listed it.

``AddressGuard.check`` refuses a URL before a request; ``GuardedResolver`` makes aiohttp apply the same
rule to the addresses it actually connects to, so a name that resolves to a public address at the check
and to a private one at connect time (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
WEB_SCHEMES = ("http", "https")


class UrlRefused(Exception):
    """The URL may not be reached; the message says why and is safe to show the tenant."""


class HostUnresolvable(UrlRefused):
    """The host has no address now: refused for a request, acceptable when a config is only saved."""


def split_url(url: str) -> SplitResult:
    """``urlsplit`` that refuses (``UrlRefused``) what it cannot parse, e.g. ``http://[::1``."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise UrlRefused(f"the URL cannot be parsed: {exc}") from exc


def _host_and_port(entry: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{entry}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid allow-list entry {entry!r}") from exc
    return (parts.hostname or "").lower(), port


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AddressGuard:
    """Allow-list entries: a CIDR range (``10.0.0.0/8``), a host (``crm.internal``, ``127.0.0.1``) or a
    host with a port (``127.0.0.1:8010``: that port only)."""

    def __init__(self, allowlist: Iterable[str] = ()) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[tuple[str, int | None]] = set()
        for raw in allowlist:
            entry = raw.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(_host_and_port(entry))

    def host_allowed(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return (host, None) in self.hosts or (port is not None and (host, port) in self.hosts)

    def allowlisted(self, url: str) -> bool:
        """The operator named this URL's host (or a range holding its literal address) in the allow-list:
        a trusted target, not merely a public one. No DNS lookup."""
        try:
            parts = split_url(url)
        except UrlRefused:
            return False
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        if not host:
            return False
        if self.host_allowed(host, port):
            return True
        try:
            address = _plain(ipaddress.ip_address(host))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def address_allowed(self, address: IPAddress, port: int | None = None) -> bool:
        address = _plain(address)
        if any(address in network for network in self.networks):
            return True
        if self.host_allowed(str(address), port):
            return True
        return address.is_global and not address.is_multicast

    def refusal(self, host: str, address: IPAddress) -> str:
        return (
            f"the host {host!r} resolves to a non-public address ({address}); an operator must allow-list "
            "it (the service's URL_ALLOWLIST setting) before it can be reached"
        )

    async def check(self, url: str, *, schemes: tuple[str, ...] = WEB_SCHEMES) -> list[IPAddress]:
        """Raise ``UrlRefused`` unless ``url`` has an allowed scheme and a host whose every address may be
        reached (or that is allow-listed); returns the addresses (see ``check_host``)."""
        parts = split_url(url)
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            raise UrlRefused(f"only {' and '.join(schemes)} URLs are allowed, not {scheme or 'none'!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise UrlRefused(f"the URL {url!r} has an invalid port") from exc
        return await self.check_host(parts.hostname or "", port)

    async def check_host(self, host: str, port: int) -> list[IPAddress]:
        """The host's addresses, all allowed (empty when the host is allow-listed by name: it is then
        reached by name). Raises ``UrlRefused``."""
        host = host.lower()
        if not host:
            raise UrlRefused("the URL has no host")
        if self.host_allowed(host, port):
            return []
        addresses = await resolve(host, port)
        for address in addresses:
            if not self.address_allowed(address, port):
                raise UrlRefused(self.refusal(host, address))
        return addresses

    async def pinned(self, url: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """``url`` rewritten to one of the checked addresses of its host, with the ``Host`` header and the
        TLS server name (httpx's ``sni_hostname`` extension) of the original: the request reaches the
        address that was checked, whatever the name resolves to a moment later (DNS rebinding).
        Returns (url, headers, extensions); raises ``UrlRefused``."""
        addresses = await self.check(url)
        parts = split_url(url)
        if not addresses:
            return url, {}, {}
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": parts.hostname or ""} if parts.scheme.lower() == "https" else {}
        return target, {"Host": host_header}, extensions

    def resolver(self) -> GuardedResolver:
        return GuardedResolver(self)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal in any form the C library accepts, such as
    ``2130706433`` or ``127.1``, resolves to itself)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolvable(f"the host {host!r} cannot be resolved") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def validate_base_url(url: str) -> str:
    """A base URL a tenant configures: http(s), a host, no credentials, query or fragment (which would
    let the tenant choose the path of every request). Returns it without a trailing slash."""
    parts = split_url(url.strip())
    if parts.scheme.lower() not in WEB_SCHEMES:
        raise UrlRefused("the base URL must start with http:// or https://")
    if not parts.hostname:
        raise UrlRefused("the base URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the base URL must not carry credentials; configure them as secrets")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UrlRefused("the base URL must not have a query string or a fragment")
    try:
        parts.port  # noqa: B018 - raises for an invalid port
    except ValueError as exc:
        raise UrlRefused("the base URL has an invalid port") from exc
    return url.strip().rstrip("/")


class GuardedResolver(AbstractResolver):  # type: ignore[misc]
    """aiohttp's resolver, refusing a name any of whose addresses the guard does not allow."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = await self.inner.resolve(host, port, family)
        if self.guard.host_allowed(host, port):
            return results
        for result in results:
            address = ipaddress.ip_address(str(result["host"]).split("%", 1)[0])
            if not self.guard.address_allowed(address, port):
                raise OSError(self.guard.refusal(host, address))
        return results

    async def close(self) -> None:
        await self.inner.close()


def allowlist_with(allowlist: Iterable[str], *urls: Any) -> list[str]:
    """The allow-list plus the ``host:port`` of each operator-configured URL given (None skipped)."""
    entries = list(allowlist)
    for url in urls:
        if not url:
            continue
        parts = urlsplit(str(url))
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            entries.append(f"{host}:{port}")
    return entries
