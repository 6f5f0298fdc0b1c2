"""Outbound HTTP for URL ingestion with an SSRF guard: every URL (and every redirect) is resolved first and
refused when it points at loopback, private, link-local or otherwise reserved addresses, unless the host
or its network is allow-listed in settings."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from switchboard_retrieval.settings import RetrievalSettings


class SourceError(Exception):
    """The source as a whole cannot be read (bad config, unreachable, malformed listing)."""


class FetchError(Exception):
    """One document cannot be fetched; recorded with its reason, the sync goes on."""


class UrlRefused(SourceError):
    pass


@dataclass
class FetchedResponse:
    url: str
    status: int
    content_type: str | None
    data: bytes


class UrlGuard:
    def __init__(self, allowlist: list[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowlist:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower())

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs can be ingested, not {parts.scheme or 'none'!r}")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"the URL {url!r} has no host")
        if host in self.hosts:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise UrlRefused(f"the host {host!r} cannot be resolved: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if any(address in network for network in self.networks):
                continue
            if not address.is_global or address.is_multicast:
                raise UrlRefused(
                    f"the host {host!r} resolves to a non-public address ({address}); "
                    "allow-list it in RETRIEVAL_URL_ALLOWLIST to ingest from it"
                )


class Fetcher:
    """GETs URLs through the guard, following at most five redirects, reading at most ``max_bytes``."""

    def __init__(self, settings: RetrievalSettings, client: httpx.AsyncClient | None = None) -> None:
        self.guard = UrlGuard(settings.url_allowlist)
        self.max_bytes = settings.max_document_bytes
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fetch_timeout, connect=settings.http_connect_timeout),
            headers={"User-Agent": settings.crawl_user_agent},
            follow_redirects=False,
        )

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> FetchedResponse:
        for _ in range(6):
            await self.guard.check(url)
            try:
                async with self.client.stream("GET", url, headers=headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_bytes:
                        raise FetchError(f"{url}: larger than {self.max_bytes} bytes")
                    chunks = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise FetchError(f"{url}: larger than {self.max_bytes} bytes")
                        chunks.append(chunk)
                    return FetchedResponse(
                        str(response.url),
                        response.status_code,
                        response.headers.get("content-type"),
                        b"".join(chunks),
                    )
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise FetchError(f"{url}: too many redirects")

    async def close(self) -> None:
        await self.client.aclose()
