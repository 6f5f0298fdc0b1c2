"""The optional `local` provider: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

Generation runs in a worker thread (llama.cpp is blocking) and hands tokens to the event loop through a
queue, one request at a time per model, since a llama.cpp context is not safe for concurrent use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from typing import Any

from switchboard_chat.providers.base import ChatProvider, GenerationEvent, GenerationRequest, TextDelta
from switchboard_chat.providers.plugins import register
from switchboard_shared.errors import AppError, ErrorCode

_DONE = object()
_LOAD_LOCK = threading.Lock()


def load_without_repack(model_path: str, n_ctx: int) -> Any:
    """A ``Llama`` with llama.cpp's extra CPU buffer types off: the prebuilt llama.cpp crashes (SIGSEGV in
    libggml-cpu) on prompts longer than one token when it repacks Q4 weights for AMX, and runs correctly
    without the repack. ``Llama`` reads its model parameters from ``llama_model_default_params`` while it
    loads, with no argument for this one, so that function is wrapped for the load (under a lock)."""
    import llama_cpp
    import llama_cpp.llama

    module: Any = getattr(llama_cpp.llama, "llama_cpp")  # noqa: B009 (not re-exported for type checkers)
    original = module.llama_model_default_params

    def without_repack() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        module.llama_model_default_params = without_repack
        try:
            return llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, verbose=False)
        finally:
            module.llama_model_default_params = original


class LocalLlamaProvider(ChatProvider):
    name = "local"

    def __init__(self, *, key: str, model_path: str, n_ctx: int, first_token_timeout: float) -> None:
        self.key = key
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.first_token_timeout = first_token_timeout
        self._llama: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self._llama is None:
            try:
                import llama_cpp  # noqa: F401
            except ImportError as exc:
                raise AppError(
                    ErrorCode.NOT_IMPLEMENTED,
                    "The local provider needs llama-cpp-python (pip install 'switchboard-chat[local]').",
                ) from exc
            self._llama = load_without_repack(self.model_path, self.n_ctx)
        return self._llama

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        async with self._lock:
            llama = await asyncio.to_thread(self._load)
            messages = [{"role": "system", "content": request.system_prompt}]
            messages += [{"role": role, "content": content} for role, content in request.history]
            messages.append({"role": "user", "content": request.user_turn()})
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            stop = threading.Event()

            def produce() -> None:
                try:
                    for chunk in llama.create_chat_completion(
                        messages=messages,
                        stream=True,
                        max_tokens=request.max_tokens,
                        temperature=request.temperature,
                    ):
                        if stop.is_set():
                            break
                        delta = chunk["choices"][0]["delta"].get("content")
                        if delta:
                            loop.call_soon_threadsafe(queue.put_nowait, delta)
                    loop.call_soon_threadsafe(queue.put_nowait, _DONE)
                except Exception as exc:  # handed to the event loop and raised there
                    loop.call_soon_threadsafe(queue.put_nowait, exc)

            worker = loop.run_in_executor(None, produce)
            try:
                while True:
                    item = await queue.get()
                    if item is _DONE:
                        break
                    if isinstance(item, Exception):
                        raise item
                    yield TextDelta(item)
            finally:
                stop.set()
                await worker


register(
    "local",
    lambda o: LocalLlamaProvider(
        key=o.key, model_path=o.model, n_ctx=o.settings.local_n_ctx, first_token_timeout=o.timeout
    ),
    fleet=lambda s: (None, None, s.local_model_path or ""),
    requires={"model": "local needs CHAT_LOCAL_MODEL_PATH (a GGUF file)."},
    tenant_model=False,  # the model file is the fleet's: a tenant never chooses a path on this disk
)
