"""Which fsspec paths a tenant's ``files`` / ``faq`` source may read.

A path is parsed the way fsspec will open it: a chained URL (``simplecache::file:///x``,
``zip://a.md::file:///b.zip``) is split into its links and every link is checked. A link's protocol must
be on the allow-list (``RETRIEVAL_FILES_PROTOCOLS``, local files only by default; web protocols never: URL
sources have their own guarded fetcher); a link with a network host passes the address guard; a local
link must lie in one of the tenant's folders and outside the service's own storage (uploads, indexes,
databases). The check runs when a source is saved and again on every file a sync reads, after symlinks
are resolved, so a glob or a link inside an allowed folder cannot reach another tenant's files.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import fsspec
import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from switchboard_retrieval.ingestion.fetching import SourceError
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.settings import Environment
from switchboard_shared.url_guard import AddressGuard, UrlRefused

LOCAL_PROTOCOLS = frozenset({"file", "local"})
WEB_PROTOCOLS = frozenset({"http", "https"})
TENANT_PLACEHOLDER = "{tenant}"
DEMO_TENANT = "demo"  # the tenant whose 'demo' knowledge base is synced from RETRIEVAL_DEMO_KB_DIR
SAFE_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class PathRefused(SourceError):
    """The path may not be read by this tenant."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def chain_links(path: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The links of an fsspec URL, outermost first, as fsspec itself splits them: (path, protocol, options
    parsed from the URL). Uses fsspec's own parser so the check and the open can never disagree."""
    try:
        links: list[tuple[str, str, dict[str, Any]]] = fsspec.core._un_chain(path, {})
    except (ImportError, ValueError, KeyError, TypeError) as exc:
        raise PathRefused(f"cannot open {path!r}: {exc}") from exc
    return links


class PathPolicy:
    """The folders one tenant's sources may read and the protocols they may use."""

    def __init__(self, settings: RetrievalSettings, tenant_id: str) -> None:
        self.settings = settings
        self.tenant_id = tenant_id
        self.protocols = {p.lower() for p in settings.files_protocols} - WEB_PROTOCOLS
        self.guard = AddressGuard(settings.url_allowlist)
        data = os.path.realpath(settings.data_dir)
        self.own_data_folder = os.path.join(data, "files", tenant_id)
        self.storage = [
            os.path.realpath(p)
            for p in (settings.uploads_dir(), settings.chroma_dir(), settings.bm25_dir(), data)
        ]
        self.roots = [os.path.realpath(root) for root in self._roots()]

    def _roots(self) -> list[str]:
        if not SAFE_TENANT.match(self.tenant_id):
            return []
        settings = self.settings
        if settings.files_roots:
            roots = [root.replace(TENANT_PLACEHOLDER, self.tenant_id) for root in settings.files_roots]
        elif settings.environment == Environment.PRODUCTION:
            roots = []
        else:
            roots = [self.own_data_folder]
        if settings.demo_kb_dir and self.tenant_id == DEMO_TENANT:
            roots.append(settings.demo_kb_dir)
        return roots

    def local_allowed(self, path: str) -> bool:
        """``path`` is a real (resolved) local path this tenant may read."""
        if not any(_inside(path, root) for root in self.roots):
            return False
        in_storage = any(_inside(path, store) for store in self.storage)
        return not in_storage or _inside(path, os.path.realpath(self.own_data_folder))

    def check_local(self, path: str, original: str) -> None:
        local = os.path.realpath(LocalFileSystem._strip_protocol(path))
        if not self.roots:
            raise PathRefused(
                "local paths are disabled; an operator can allow folders with RETRIEVAL_FILES_ROOTS"
            )
        if not self.local_allowed(local):
            raise PathRefused(f"{original} is outside the folders this tenant's sources may read")

    async def check(self, path: str) -> None:
        """Refuse ``path`` unless every link of it may be read (raises ``PathRefused``)."""
        links = chain_links(path)
        for bit, protocol, options in links:
            protocol = protocol.lower()
            if protocol in WEB_PROTOCOLS:
                raise PathRefused(
                    "web addresses are read by 'url' or 'sitemap' sources, not by files sources"
                )
            if protocol not in self.protocols:
                allowed = ", ".join(sorted(self.protocols)) or "none"
                raise PathRefused(
                    f"the protocol {protocol!r} is not allowed for files sources (allowed: {allowed}); "
                    "an operator can allow more with RETRIEVAL_FILES_PROTOCOLS"
                )
            if protocol in LOCAL_PROTOCOLS:
                await asyncio.to_thread(self.check_local, bit, path)
            elif isinstance(options.get("host"), str):
                try:
                    await self.guard.check_host(options["host"], int(options.get("port") or 0))
                except UrlRefused as exc:
                    raise PathRefused(str(exc)) from exc
