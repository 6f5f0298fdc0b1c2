"""``switchboard ingest PATH_OR_URL --kb NAME``: put a directory, files, a web page or a sitemap into a
knowledge base, through the gateway or straight to the retrieval service, with a live progress bar.

A folder is mirrored by an upload source of its own: each run uploads what changed and removes what the
folder no longer holds, so deleted files stop being found and cited."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()
SUPPORTED = {".md", ".markdown", ".rst", ".html", ".htm", ".txt", ".text", ".pdf", ".csv", ".json"}
UPLOAD_BATCH_FILES = 50
UPLOAD_BATCH_BYTES = 16 * 1024 * 1024
DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"


class IngestError(Exception):
    pass


class Api:
    """The knowledge-base API, public (``/v1`` with an API key) or internal (``/internal/v1``)."""

    def __init__(self, client: httpx.Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, f"{self.prefix}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise IngestError(f"cannot reach {self.client.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise IngestError(f"{method} {path} answered {response.status_code}: {message}")
        return response.json() if response.content else None


def _knowledge_base(api: Api, name: str, model: str | None) -> dict[str, Any]:
    found = api.call("GET", "/kbs", params={"name": name, "limit": 1})["items"]
    if found:
        kb: dict[str, Any] = found[0]
        return kb
    body: dict[str, Any] = {"name": name}
    if model:
        body["embedding_model"] = model
    created: dict[str, Any] = api.call("POST", "/kbs", json=body)
    console.print(f"Created knowledge base [bold]{name}[/] ({created['embedding_model']})")
    return created


def _local_files(path: Path) -> list[tuple[str, Path]]:
    """(name in the source, path): a folder's files keep their relative path (``guides/setup.md``)."""
    if path.is_file():
        return [(path.name, path)]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
    return [(p.relative_to(path).as_posix(), p) for p in files]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _folder_source(api: Api, kb_id: str, name: str, public_base_url: str | None) -> dict[str, Any]:
    """The knowledge base's upload source that mirrors this folder, made on the first run."""
    config = {"public_base_url": public_base_url} if public_base_url else {}
    for source in api.call("GET", f"/kbs/{kb_id}/sources"):
        if source["type"] == "upload" and source["name"] == name and source["config"].get("default") is False:
            if public_base_url and source["config"].get("public_base_url") != public_base_url:
                source = api.call("PATCH", f"/kbs/{kb_id}/sources/{source['id']}", json={"config": config})
            return dict(source)
    created = api.call(
        "POST",
        f"/kbs/{kb_id}/sources",
        json={"type": "upload", "name": name, "config": config, "sync": False},
    )
    return dict(created["source"])


def _sync_folder(
    api: Api, kb_id: str, files: list[tuple[str, Path]], source_name: str, public_base_url: str | None
) -> str:
    """Make the folder's upload source hold exactly ``files``: upload what is new or changed (by SHA-256),
    remove what the folder no longer has, then sync the source, which removes those documents from the
    index. The files travel over HTTP, so the CLI need not run where the retrieval service does."""
    if not files:
        raise IngestError("no supported files found (Markdown, RST, HTML, text, PDF, FAQ CSV/JSON)")
    source = _folder_source(api, kb_id, source_name, public_base_url)
    stored = {f["name"]: f["sha256"] for f in api.call("GET", f"/kbs/{kb_id}/sources/{source['id']}/files")}
    changed = [(name, path) for name, path in files if stored.get(name) != _sha256(path)]
    batches: list[list[tuple[str, Path]]] = [[]]
    size = 0
    for name, path in changed:
        length = path.stat().st_size
        if batches[-1] and (len(batches[-1]) >= UPLOAD_BATCH_FILES or size + length > UPLOAD_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append((name, path))
        size += length
    with Progress(TextColumn("Uploading"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("upload", total=len(changed))
        for batch in batches:
            if not batch:
                continue
            payload = [("files", (name, path.read_bytes())) for name, path in batch]
            api.call(
                "POST",
                f"/kbs/{kb_id}/files",
                files=payload,
                params={"sync": "false", "source_id": source["id"]},
            )
            progress.advance(task, len(batch))
    pruned = api.call(
        "POST", f"/kbs/{kb_id}/sources/{source['id']}/files/prune", json={"keep": [name for name, _ in files]}
    )
    console.print(
        f"{len(changed)} of {len(files)} files uploaded (the rest unchanged), "
        f"{len(pruned['deleted'])} removed from the source"
    )
    job: dict[str, Any] = api.call("POST", f"/kbs/{kb_id}/sources/{source['id']}/sync")
    return str(job["id"])


def _url_source(api: Api, kb_id: str, url: str, sitemap: bool, max_pages: int | None) -> str:
    kind = "sitemap" if sitemap or url.rstrip("/").endswith(".xml") else "url"
    config: dict[str, Any] = {"url": url}
    if kind == "sitemap" and max_pages:
        config["max_pages"] = max_pages
    for source in api.call("GET", f"/kbs/{kb_id}/sources"):
        if source["type"] == kind and source["config"].get("url") == url:
            job: dict[str, Any] = api.call("POST", f"/kbs/{kb_id}/sources/{source['id']}/sync")
            return str(job["id"])
    created = api.call(
        "POST", f"/kbs/{kb_id}/sources", json={"type": kind, "config": config, "name": url[:200]}
    )
    return str(created["job"]["id"])


def _follow(api: Api, job_id: str, poll: float) -> dict[str, Any]:
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[status]}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "docs  {task.fields[chunks]} chunks embedded  {task.fields[rate]}  ETA {task.fields[eta]}"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("job", total=None, status="queued", chunks=0, rate="", eta="–")
        while True:
            job: dict[str, Any] = api.call("GET", f"/jobs/{job_id}")
            done = job["documents_done"] + job["documents_failed"]
            rate = f"{job['rate_chunks_per_s']:.1f} chunks/s" if job.get("rate_chunks_per_s") else ""
            eta = f"{job['eta_seconds']:.0f}s" if job.get("eta_seconds") is not None else "–"
            progress.update(
                task,
                total=job.get("documents_total") or max(job["documents_seen"], done) or None,
                completed=done,
                status=job["status"],
                chunks=job["chunks_embedded"],
                rate=rate,
                eta=eta,
            )
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(poll)


def _summary(job: dict[str, Any]) -> None:
    table = Table(title=f"Sync {job['status']}")
    for column in ("added", "updated", "unchanged", "deleted"):
        table.add_column(f"chunks {column}", justify="right")
    table.add_column("documents", justify="right")
    table.add_column("documents removed", justify="right")
    table.add_column("failed", justify="right")
    counts = job["counts"]
    table.add_row(
        *(str(counts[c]) for c in ("added", "updated", "unchanged", "deleted")),
        str(job["documents_seen"]),
        str(counts["documents_deleted"]),
        str(job["documents_failed"]),
    )
    console.print(table)
    for failure in job["failures"][:20]:
        console.print(f"[yellow]  {failure['document']}: {failure['reason']}[/]")
    if job.get("error"):
        console.print(f"[red]{job['error']}[/]")


def ingest_command(
    path_or_url: Annotated[
        str, typer.Argument(help="A directory, a file, a web page URL or a sitemap.xml URL")
    ],
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base name (created when missing)")],
    gateway: Annotated[str | None, typer.Option(help="Gateway URL (public API, needs --key)")] = None,
    key: Annotated[str | None, typer.Option(help="A server or admin API key of the tenant")] = None,
    retrieval: Annotated[str | None, typer.Option(help="Retrieval service URL (internal API)")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant id with --retrieval")] = "demo",
    internal_token: Annotated[
        str | None, typer.Option(help="Internal token with --retrieval (default: SWITCHBOARD_INTERNAL_TOKEN)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model of a new knowledge base")] = None,
    sitemap: Annotated[bool, typer.Option(help="Treat the URL as a sitemap")] = False,
    max_pages: Annotated[int | None, typer.Option(help="Page limit of a sitemap crawl")] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="Name of the source mirroring the folder (default: its absolute path); keep it when the "
            "folder moves or the command runs on another machine"
        ),
    ] = None,
    public_base_url: Annotated[
        str | None,
        typer.Option(
            help="Public address of the folder's pages: citations link to it joined with each file's path "
            "(without it, citations of these files carry a title only)"
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends")] = True,
    poll: Annotated[float, typer.Option(help="Seconds between progress polls")] = 0.5,
) -> None:
    """Ingest PATH_OR_URL into knowledge base --kb and show the job's progress and counts."""
    if gateway and retrieval:
        console.print("[red]Give --gateway or --retrieval, not both.[/]")
        raise typer.Exit(2)
    if gateway:
        if not key:
            console.print("[red]--gateway needs --key.[/]")
            raise typer.Exit(2)
        client = httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        api = Api(client, "/v1")
    else:
        token = internal_token or os.environ.get("SWITCHBOARD_INTERNAL_TOKEN") or DEV_INTERNAL_TOKEN
        headers = {"X-Internal-Token": token, "X-Tenant-ID": tenant}
        client = httpx.Client(base_url=retrieval or "http://127.0.0.1:8002", headers=headers, timeout=120)
        api = Api(client, "/internal/v1")
    try:
        with client:
            knowledge_base = _knowledge_base(api, kb, model)
            if path_or_url.startswith(("http://", "https://")):
                job_id = _url_source(api, knowledge_base["id"], path_or_url, sitemap, max_pages)
            else:
                path = Path(path_or_url).expanduser()
                if not path.exists():
                    raise IngestError(f"{path} does not exist")
                name = (source or str(path.resolve()))[:200]
                job_id = _sync_folder(api, knowledge_base["id"], _local_files(path), name, public_base_url)
            if not wait:
                console.print(f"Job {job_id} queued.")
                return
            job = _follow(api, job_id, poll)
    except IngestError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    _summary(job)
    if job["status"] != "succeeded":
        raise typer.Exit(1)
