"""With the network unreachable, every offline model loads from its package, no connection is attempted
(Chroma's telemetry and stock model included), and the vectors match the stored reference set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "embedding_reference.json"

PROBE = textwrap.dedent(
    """
    import json, socket, sys
    attempts = []
    def refuse(kind):
        def guard(*args, **kwargs):
            attempts.append([kind, repr(args[:2])[:200]])
            raise OSError("network unreachable (test)")
        return guard
    real_connect = socket.socket.connect
    def connect(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        attempts.append(["connect", repr(address)[:200]])
        raise OSError("network unreachable (test)")
    socket.socket.connect = connect
    socket.socket.connect_ex = lambda self, address: (attempts.append(["connect_ex", repr(address)]), 101)[1]
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")

    from switchboard_retrieval.embeddings.encoders import EmbeddingRegistry
    from switchboard_retrieval.index.vectors import VectorStore, open_client
    from switchboard_retrieval.settings import RetrievalSettings
    settings = RetrievalSettings(data_dir=sys.argv[2], embedding_threads=1)
    sentences = json.load(open(sys.argv[1]))["sentences"]
    registry = EmbeddingRegistry(settings)
    out = {"models": {}}
    for name in ("minilm", "use-multilingual", "e5-small"):
        model = registry.get(name)
        out["models"][name] = {
            "documents": model.embed_documents(sentences).tolist(),
            "query": model.embed_query(sentences[0]).tolist(),
        }
    # A collection created, then reopened by a new client, must not reach for Chroma's stock model.
    import asyncio
    vectors = out["models"]["minilm"]["documents"]
    store = VectorStore(open_client(settings))
    import numpy as np
    asyncio.run(store.upsert("t-probe", ["a", "b", "c"], np.array(vectors, dtype="float32"), [{"k": 1}] * 3))
    reopened = VectorStore(open_client(settings))
    hits = asyncio.run(reopened.query("t-probe", np.array(vectors[0], dtype="float32"), 2))
    out["top"] = hits[0].chunk_id
    out["attempts"] = attempts
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_offline_models_make_no_network_attempt_and_match_reference(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(REFERENCE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["attempts"] == []
    assert probe["top"] == "a"
    reference = json.loads(REFERENCE.read_text())
    for name, expected in reference["models"].items():
        got = probe["models"][name]
        for got_vec, ref_vec in zip(got["documents"], expected["documents"], strict=True):
            a, b = np.array(got_vec), np.array(ref_vec)
            assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) >= 0.999, name
        q, rq = np.array(got["query"]), np.array(expected["query"])
        assert float(q @ rq / (np.linalg.norm(q) * np.linalg.norm(rq))) >= 0.999, name


def test_cross_lingual_models_map_russian_to_english() -> None:
    reference = json.loads(REFERENCE.read_text())
    for name in ("use-multilingual", "e5-small"):
        docs = np.array(reference["models"][name]["documents"])
        # The Russian question is nearer its English twin than the unrelated English sentence.
        assert docs[1] @ docs[0] > docs[1] @ docs[2], name
