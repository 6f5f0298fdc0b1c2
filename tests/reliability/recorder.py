"""A loopback HTTP server standing for a service inside the fleet's network that tenants must not reach:
it records every request (path and headers) and answers 200 with a Markdown page carrying a marker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .fleet import Receive, Scope, Send, ThreadedApp


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    marker: str = "INTERNAL-ONLY-7f3a9c"
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = ThreadedApp(self._asgi, "recorder")

    @property
    def port(self) -> int:
        return self.app.port

    @property
    def url(self) -> str:
        return self.app.url

    def start(self) -> Recorder:
        self.app.start()
        return self

    def stop(self) -> None:
        self.app.stop()

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.hits.append(Hit(scope["method"], scope["path"], headers))
        body = f"# Internal\n\nThe internal code is {self.marker}.\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/markdown")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder().start()
    yield server
    server.stop()
