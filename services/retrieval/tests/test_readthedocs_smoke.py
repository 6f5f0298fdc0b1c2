"""A fast smoke run on a subset of the Read the Docs pages beside the project (the full evaluation is
``bench/retrieval_quality.py``): Sphinx sources ingest and customer questions find their page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

RTD = Path(__file__).resolve().parents[3].parent / "shared" / "kb" / "readthedocs"
# Citations link only to public addresses: the tests find documents by the path mapped onto this one.
PUBLIC = "https://help.example/"
PAGES = [
    "docs__user__builds.rst",
    "docs__user__custom-domains.rst",
    "docs__user__guides__management__2fa.rst",
    "docs__user__badges.rst",
    "docs__user__commercial__subscriptions.rst",
]


@pytest.mark.asyncio
async def test_readthedocs_subset(sqlite_service: Any, tmp_path: Path) -> None:
    if not RTD.is_dir():
        pytest.skip(f"the Read the Docs sample knowledge base is absent ({RTD})")
    corpus = tmp_path / "rtd"
    corpus.mkdir()
    for name in PAGES:
        shutil.copy(RTD / name, corpus / name)
    kb = await sqlite_service.create_kb("rtd")
    _, job = await sqlite_service.add_source(
        kb["id"], {"type": "files", "config": {"path": str(corpus), "public_base_url": PUBLIC}}
    )
    assert job["status"] == "succeeded" and job["documents_failed"] == 0
    for question, expected in [
        ("Can I stop a build that is already running?", "docs__user__builds.rst"),
        ("How do I serve my docs from my own domain name?", "docs__user__custom-domains.rst"),
        ("I lost my phone, how do recovery codes work?", "docs__user__guides__management__2fa.rst"),
        ("How do I cancel our paid plan?", "docs__user__commercial__subscriptions.rst"),
    ]:
        hits = await sqlite_service.search(kb["id"], question)
        assert hits[0]["url"].endswith(expected), (question, [h["url"] for h in hits[:3]])
        assert "|" not in hits[0]["title"] and ".. " not in hits[0]["text"][:3]
