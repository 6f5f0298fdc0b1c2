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
from switchboard_shared.errors import AppError, ErrorCode

_DONE = object()


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
                from llama_cpp import Llama
            except ImportError as exc:
                raise AppError(
                    ErrorCode.NOT_IMPLEMENTED,
                    "The local provider needs llama-cpp-python (pip install 'switchboard-chat[local]').",
                ) from exc
            self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, verbose=False)
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
