"""Source connectors: each lists and fetches the documents of one source.

A connector yields ``FetchedDocument`` for every document it could read and ``FetchFailure`` for one it
could not (recorded, and its earlier chunks kept); a problem with the source as a whole raises
``SourceError`` and the sync prunes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib import robotparser
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import fsspec
from bs4 import BeautifulSoup

from switchboard_retrieval.ingestion.fetching import Fetcher, FetchError, SourceError
from switchboard_retrieval.ingestion.parsing import FORMAT_BY_EXTENSION, FetchedDocument, format_for
from switchboard_retrieval.ingestion.paths import PathPolicy
from switchboard_retrieval.settings import RetrievalSettings

SOURCE_TYPES = ("upload", "files", "url", "sitemap", "confluence", "faq")
SECRET_KEYS = frozenset({"api_token", "token", "password", "secret"})


# A page that answers these is gone from the site: its document is removed, not kept as a failure.
GONE_STATUSES = frozenset({404, 410})


@dataclass
class FetchFailure:
    uri: str
    reason: str
    gone: bool = False


FetchItem = FetchedDocument | FetchFailure


def _require(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"the source config needs {key!r}")
    return value.strip()


class Connector:
    type: ClassVar[str]
    # Set once the listing is known (files), so the job can show an ETA; None while unknown.
    expected_total: int | None = None

    def __init__(
        self,
        config: dict[str, Any],
        settings: RetrievalSettings,
        fetcher: Fetcher,
        *,
        tenant_id: str,
        only: frozenset[str] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.fetcher = fetcher
        self.tenant_id = tenant_id
        # A re-sync of some documents: the source is still listed in full (so a document it no longer
        # holds is known to be gone), but only these URIs are fetched.
        self.only = only

    def wanted(self, uri: str) -> bool:
        return self.only is None or uri in self.only

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        """Refuse a config that can never work (400 when the source is created)."""

    def documents(self) -> AsyncIterator[FetchItem]:
        raise NotImplementedError


def _validate_public_base_url(config: dict[str, Any]) -> None:
    base = config.get("public_base_url")
    if base is None:
        return
    if (
        not isinstance(base, str)
        or urlsplit(base).scheme not in ("http", "https")
        or not urlsplit(base).netloc
    ):
        raise SourceError("public_base_url must be an http:// or https:// address")
    extension = config.get("public_url_extension")
    if extension is not None and (
        not isinstance(extension, str) or not re.fullmatch(r"(\.[\w-]{1,10})?", extension)
    ):
        raise SourceError("public_url_extension must be empty or like '.html'")


def public_url(config: dict[str, Any], relative: str) -> str | None:
    """The public address of a file of a files/upload/FAQ source: ``public_base_url`` joined with its path in
    the source (its extension swapped for ``public_url_extension`` when set), or None: a path on the server
    is never an address customers may see."""
    base = config.get("public_base_url")
    if not isinstance(base, str) or not base:
        return None
    extension = config.get("public_url_extension")
    if isinstance(extension, str):
        stem, dot, _ = relative.rpartition(".")
        relative = (stem if dot and "/" not in relative[len(stem) :] else relative) + extension
    return urljoin(base.rstrip("/") + "/", quote(relative))


class FilesConnector(Connector):
    """fsspec paths and globs: ``/dir``, ``file:///dir/**/*.md``, ``s3://bucket/prefix`` (with s3fs)."""

    type = "files"
    formats: ClassVar[frozenset[str] | None] = None

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        path = _require(config, "path")
        if urlsplit(path).scheme in ("http", "https"):
            raise SourceError("use a 'url' or 'sitemap' source for web addresses")
        _validate_public_base_url(config)

    async def check_path(self, path: str) -> None:
        """Every link of the path must be readable by this tenant (checked again at each sync: the rules
        or the folders may have changed since the source was saved)."""
        await PathPolicy(self.settings, self.tenant_id).check(path)

    def file_allowed(self, protocol: str, path: str) -> bool:
        """One listed file, after symlinks are resolved: a glob or a link must not lead out of the folders
        the tenant may read."""
        if protocol not in ("file", "local"):
            return True
        return PathPolicy(self.settings, self.tenant_id).local_allowed(os.path.realpath(path))

    def _list(self) -> tuple[Any, str, list[str]]:
        path = _require(self.config, "path")
        try:
            fs, root = fsspec.core.url_to_fs(path)
        except (ImportError, ValueError) as exc:
            raise SourceError(f"cannot open {path!r}: {exc}") from exc
        try:
            if any(ch in root for ch in "*?["):
                found = [p for p in fs.glob(root) if fs.isfile(p)]
                base = re.split(r"[*?\[]", root, maxsplit=1)[0].rsplit("/", 1)[0]
            elif fs.isdir(root):
                found = list(fs.find(root))
                base = root.rstrip("/")
            elif fs.isfile(root):
                found = [root]
                base = root.rsplit("/", 1)[0]
            else:
                raise SourceError(f"{path!r} does not exist")
        except OSError as exc:
            raise SourceError(f"cannot list {path!r}: {exc}") from exc
        supported = [
            p
            for p in sorted(found)
            if (fmt := format_for(p)) is not None and (self.formats is None or fmt in self.formats)
        ]
        return fs, base, supported

    async def documents(self) -> AsyncIterator[FetchItem]:
        await self.check_path(_require(self.config, "path"))
        fs, base, paths = await asyncio.to_thread(self._list)
        listed = [(path, path[len(base) :].lstrip("/") if path.startswith(base) else path) for path in paths]
        listed = [(path, relative) for path, relative in listed if self.wanted(relative)]
        self.expected_total = len(listed)
        protocol = fs.protocol[0] if isinstance(fs.protocol, tuple | list) else fs.protocol
        for path, relative in listed:
            name = path.rsplit("/", 1)[-1]
            if not await asyncio.to_thread(self.file_allowed, protocol, path):
                yield FetchFailure(relative, "outside the folders this source may read")
                continue
            try:
                size = await asyncio.to_thread(fs.size, path)
                if size is not None and size > self.settings.max_document_bytes:
                    yield FetchFailure(relative, f"larger than {self.settings.max_document_bytes} bytes")
                    continue
                data = await asyncio.to_thread(fs.cat_file, path)
            except OSError as exc:
                yield FetchFailure(relative, f"cannot read: {exc}")
                continue
            fmt = format_for(name)
            assert fmt is not None
            yield FetchedDocument(
                uri=relative, name=name, data=data, fmt=fmt, url=public_url(self.config, relative)
            )


class FaqConnector(FilesConnector):
    """FAQ files (CSV or JSON question/answer pairs) at an fsspec path."""

    type = "faq"
    formats = frozenset({"faq-csv", "faq-json"})


class UploadConnector(FilesConnector):
    """The files uploaded to a knowledge base, kept under the service's upload directory (the path is set
    by the service, never by the tenant)."""

    type = "upload"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        _require(config, "path")
        _validate_public_base_url(config)

    async def check_path(self, path: str) -> None:
        root = await asyncio.to_thread(os.path.realpath, self.settings.uploads_dir())
        if not (await asyncio.to_thread(os.path.realpath, path)).startswith(root.rstrip("/") + "/"):
            raise SourceError("an upload source reads only the service's upload directory")

    def file_allowed(self, protocol: str, path: str) -> bool:  # noqa: ARG002
        folder = os.path.realpath(_require(self.config, "path"))
        return os.path.realpath(path).startswith(folder.rstrip("/") + "/")


def _html_url_document(url: str, response_url: str, content_type: str | None, data: bytes) -> FetchedDocument:
    fmt = format_for(urlsplit(response_url).path, content_type) or "html"
    if fmt in ("faq-json",) and "json" not in (content_type or ""):
        fmt = "html"
    name = urlsplit(response_url).path.rsplit("/", 1)[-1] or urlsplit(response_url).netloc
    return FetchedDocument(uri=url, name=name, data=data, fmt=fmt, url=response_url)


class UrlConnector(Connector):
    """A single web page (or a document at a URL: PDF, Markdown, text)."""

    type = "url"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        url = _require(config, "url")
        if urlsplit(url).scheme not in ("http", "https"):
            raise SourceError("the url must start with http:// or https://")

    async def documents(self) -> AsyncIterator[FetchItem]:
        url = _require(self.config, "url")
        try:
            response = await self.fetcher.get(url)
        except FetchError as exc:
            raise SourceError(str(exc)) from exc
        if response.status in GONE_STATUSES:
            yield FetchFailure(url, f"HTTP {response.status}", gone=True)
            return
        if response.status != 200:
            raise SourceError(f"{url} answered HTTP {response.status}")
        yield _html_url_document(url, response.url, response.content_type, response.data)


class SitemapConnector(Connector):
    """Crawls the pages a ``sitemap.xml`` lists (nested sitemap indexes too): same site only, within the
    page and depth limits, skipping what robots.txt disallows for our user agent."""

    type = "sitemap"
    NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        UrlConnector.validate(config)
        for key in ("max_pages", "max_depth"):
            if key in config and (not isinstance(config[key], int) or config[key] < 0):
                raise SourceError(f"{key} must be a non-negative integer")

    async def _robots(self, root: str) -> robotparser.RobotFileParser:
        parser = robotparser.RobotFileParser()
        try:
            response = await self.fetcher.get(urljoin(root, "/robots.txt"))
        except FetchError:
            parser.parse([])
            return parser
        if response.status in (401, 403):
            parser.disallow_all = True  # type: ignore[attr-defined]
        elif response.status == 200:
            parser.parse(response.data.decode("utf-8", "replace").splitlines())
        else:
            parser.parse([])
        return parser

    async def _sitemap_urls(self, url: str, site: str, depth: int, max_depth: int, limit: int) -> list[str]:
        try:
            response = await self.fetcher.get(url)
        except FetchError as exc:
            raise SourceError(f"sitemap {url}: {exc}") from exc
        if response.status != 200:
            raise SourceError(f"sitemap {url} answered HTTP {response.status}")
        try:
            root = ET.fromstring(response.data)
        except ET.ParseError as exc:
            raise SourceError(f"malformed sitemap {url}: {exc}") from exc
        tag = root.tag.replace(self.NS, "")
        locs = [
            (el.text or "").strip() for el in root.iter() if el.tag.replace(self.NS, "") == "loc" and el.text
        ]
        if tag == "sitemapindex":
            if depth >= max_depth:
                return []
            urls: list[str] = []
            for child in locs:
                if urlsplit(child).netloc != site or len(urls) >= limit:
                    continue
                urls += await self._sitemap_urls(child, site, depth + 1, max_depth, limit - len(urls))
            return urls
        if tag != "urlset":
            raise SourceError(f"malformed sitemap {url}: the root element is <{tag}>, not <urlset>")
        return locs

    async def documents(self) -> AsyncIterator[FetchItem]:
        url = _require(self.config, "url")
        site = urlsplit(url).netloc
        max_pages = int(self.config.get("max_pages", self.settings.crawl_max_pages))
        max_depth = int(self.config.get("max_depth", self.settings.crawl_max_depth))
        prefix = self.config.get("path_prefix")
        robots = await self._robots(url)
        seen: set[str] = set()
        pages = 0
        for page in await self._sitemap_urls(url, site, 0, max_depth, max_pages * 2):
            page = urldefrag(page)[0]
            if page in seen or urlsplit(page).netloc != site:
                continue
            if isinstance(prefix, str) and not urlsplit(page).path.startswith(prefix):
                continue
            seen.add(page)
            if not robots.can_fetch(self.settings.crawl_user_agent, page):
                continue
            if pages >= max_pages:
                break
            pages += 1
            if not self.wanted(page):
                continue
            try:
                response = await self.fetcher.get(page)
            except (FetchError, SourceError) as exc:
                yield FetchFailure(page, str(exc))
                continue
            if response.status != 200:
                yield FetchFailure(page, f"HTTP {response.status}", gone=response.status in GONE_STATUSES)
                continue
            yield _html_url_document(page, response.url, response.content_type, response.data)


def storage_to_html(storage: str) -> str:
    """Confluence storage format → plain HTML: macro parameters dropped, code and panel bodies kept."""
    soup = BeautifulSoup(storage, "html.parser")
    for tag in soup.find_all(["ac:parameter", "ri:attachment", "ac:image"]):
        tag.decompose()
    for body in soup.find_all("ac:plain-text-body"):
        pre = soup.new_tag("pre")
        pre.string = body.get_text()
        body.replace_with(pre)
    for link in soup.find_all("ac:link"):
        link.replace_with(link.get_text(" ", strip=True))
    return str(soup)


class ConfluenceConnector(Connector):
    """The pages of one Confluence space through the REST API (``/rest/api/content``), Cloud or Data
    Center, with their ancestors as breadcrumbs and the page URL kept."""

    type = "confluence"
    page_size = 50

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        UrlConnector.validate({"url": _require(config, "base_url")})
        _require(config, "space_key")
        deployment = config.get("deployment", "cloud")
        if deployment not in ("cloud", "datacenter"):
            raise SourceError("deployment must be 'cloud' or 'datacenter'")
        if deployment == "cloud" and not (config.get("email") and config.get("api_token")):
            raise SourceError("Confluence Cloud needs 'email' and 'api_token'")
        if deployment == "datacenter" and not config.get("api_token"):
            raise SourceError("Confluence Data Center needs 'api_token' (a personal access token)")

    def _auth_headers(self) -> dict[str, str]:
        token = str(self.config.get("api_token", ""))
        if self.config.get("deployment", "cloud") == "cloud" or self.config.get("username"):
            user = str(self.config.get("email") or self.config.get("username"))
            basic = base64.b64encode(f"{user}:{token}".encode()).decode()
            return {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def documents(self) -> AsyncIterator[FetchItem]:
        import json

        base = _require(self.config, "base_url").rstrip("/")
        space = _require(self.config, "space_key")
        max_pages = int(self.config.get("max_pages", self.settings.crawl_max_pages))
        headers = self._auth_headers()
        url: str | None = (
            f"{base}/rest/api/content?spaceKey={space}&type=page&status=current"
            f"&expand=body.storage,ancestors,version&limit={self.page_size}&start=0"
        )
        pages = 0
        while url and pages < max_pages:
            try:
                response = await self.fetcher.get(url, headers=headers)
            except FetchError as exc:
                raise SourceError(f"Confluence: {exc}") from exc
            if response.status in (401, 403):
                raise SourceError(f"Confluence refused the credentials (HTTP {response.status})")
            if response.status != 200:
                raise SourceError(f"Confluence answered HTTP {response.status} for {url}")
            try:
                payload = json.loads(response.data)
                results = payload["results"]
                links = payload.get("_links", {})
                if not isinstance(results, list):
                    raise TypeError("results is not a list")
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(f"malformed Confluence response: {exc}") from exc
            site = links.get("base") or base
            for page in results:
                if pages >= max_pages:
                    break
                pages += 1
                page_id = str(page.get("id", ""))
                if not self.wanted(f"confluence:{page_id}"):
                    continue
                try:
                    title = str(page["title"])
                    storage = page["body"]["storage"]["value"]
                except (KeyError, TypeError):
                    yield FetchFailure(page_id or "?", "the page has no body.storage (expand=body.storage)")
                    continue
                ancestors = [
                    str(a.get("title", "")) for a in page.get("ancestors") or [] if isinstance(a, dict)
                ]
                webui = (page.get("_links") or {}).get("webui")
                yield FetchedDocument(
                    uri=f"confluence:{page_id}",
                    name=title,
                    data=storage_to_html(storage).encode("utf-8"),
                    fmt="html",
                    url=f"{site}{webui}" if webui else None,
                    title=title,
                    breadcrumbs=[a for a in ancestors if a],
                )
            next_link = links.get("next")
            url = (f"{site}{next_link}" if next_link.startswith("/") else next_link) if next_link else None


CONNECTORS: dict[str, type[Connector]] = {
    cls.type: cls
    for cls in (
        UploadConnector,
        FilesConnector,
        FaqConnector,
        UrlConnector,
        SitemapConnector,
        ConfluenceConnector,
    )
}


def make_connector(
    source_type: str,
    config: dict[str, Any],
    settings: RetrievalSettings,
    fetcher: Fetcher,
    *,
    tenant_id: str,
    only: frozenset[str] | None = None,
) -> Connector:
    try:
        cls = CONNECTORS[source_type]
    except KeyError as exc:
        raise SourceError(
            f"unknown source type {source_type!r}; choose one of {', '.join(SOURCE_TYPES)}"
        ) from exc
    return cls(config, settings, fetcher, tenant_id=tenant_id, only=only)


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as the API shows it: secrets masked."""
    return {k: ("***" if k in SECRET_KEYS and v else v) for k, v in config.items()}


def upload_extensions() -> list[str]:
    return sorted(FORMAT_BY_EXTENSION)


def _safe_segment(segment: str) -> str:
    return re.sub(r"[^\w.\- ]+", "_", segment, flags=re.UNICODE).strip(" .")[:200]


def safe_upload_name(name: str) -> str:
    """The name an uploaded file is kept under: its folders within the upload are kept (``guides/a.md``,
    so a public URL can mirror them), each segment cleaned; no absolute path, no ``..``."""
    segments = [_safe_segment(s) for s in name.replace("\\", "/").split("/")]
    kept = [s for s in segments if s][-8:]
    return "/".join(kept)[:1000] or "upload"
