"""Outbound HTTP for URL ingestion through the fleet's address guard (``switchboard_shared.url_guard``):
every URL (and every redirect) is resolved first and refused when it points at loopback, private,
link-local or otherwise reserved addresses, unless the host or its network is allow-listed in settings."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.url_guard import AddressGuard
from switchboard_shared.url_guard import UrlRefused as GuardRefused


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


class Fetcher:
    """GETs URLs through the guard, following at most five redirects, reading at most ``max_bytes``; each
    request goes to the address the guard checked (see ``AddressGuard.pinned``)."""

    def __init__(self, settings: RetrievalSettings, client: httpx.AsyncClient | None = None) -> None:
        self.guard = AddressGuard(settings.url_allowlist)
        self.max_bytes = settings.max_document_bytes
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fetch_timeout, connect=settings.http_connect_timeout),
            headers={"User-Agent": settings.crawl_user_agent},
            follow_redirects=False,
        )

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> FetchedResponse:
        for _ in range(6):
            try:
                target, pinned_headers, extensions = await self.guard.pinned(url)
            except GuardRefused as exc:
                raise UrlRefused(str(exc)) from exc
            try:
                async with self.client.stream(
                    "GET", target, headers={**(headers or {}), **pinned_headers}, extensions=extensions
                ) as response:
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
                        url,
                        response.status_code,
                        response.headers.get("content-type"),
                        b"".join(chunks),
                    )
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise FetchError(f"{url}: too many redirects")

    async def close(self) -> None:
        await self.client.aclose()
