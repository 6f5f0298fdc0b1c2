"""A small stand-in for the gateway's public API, speaking its wire format, for the widget's browser tests.

It serves the real ``widget.js`` and demo page from the gateway's static folder and behaves like the
gateway (``switchboard_gateway.proxy.middleware``) where the widget can tell: preflights answered for any
origin; a widget key needs an allowed ``Origin`` and ``X-Anonymous-ID`` (8-64 of ``[A-Za-z0-9_-]``) or
``X-End-User-Token``; a refused origin or key gets its 403/401 WITHOUT CORS headers (so the page cannot read
it); errors after that carry CORS headers and ``Retry-After``; the end user is ``anon:<anonymous id>`` and a
new conversation must name exactly that user (as chat checks). Conversation answers are built from the
shared chat contracts, so the widget is tested against exactly the JSON the fleet sends. Every API request
is recorded for the tests to assert on.

The customer's site (``/host``) is served as ``http://localhost:PORT`` while the API is
``http://127.0.0.1:PORT``: a cross-origin embedding, as on a real site.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from switchboard_cli.demo import bootstrap_demo, set_demo_greeting
from switchboard_cli.fleet import Fleet, ServiceSpec
from switchboard_shared.contracts.chat import (
    Channel,
    Citation,
    CitationPacket,
    ConversationStatus,
    ConversationWithMessages,
    DonePacket,
    HandoffInfo,
    HandoffPacket,
    HeartbeatPacket,
    Message,
    Owner,
    PostMessage,
    ResetPacket,
    Role,
    TokenPacket,
    TurnResult,
    encode_sse,
)
from switchboard_shared.registry import DEMO_CRM_MODULE, SERVICE_NAMES
from switchboard_shared.testing.servers import free_port, wait_for_port

STATIC_DIR = (
    Path(__file__).resolve().parents[2] / "services" / "gateway" / "src" / "switchboard_gateway" / "static"
)
WIDGET_KEY = "pk_test_standin"
ANSWER = "You can reset your password from the sign-in page: choose **Forgot password** [1]."
ANSWER_SHOWN = ANSWER.replace("**", "")  # as the widget shows it: bold, without the asterisks
CITATION = Citation(
    index=1,
    chunk_id="chunk-1",
    document_id="doc-reset",
    title="Resetting your password",
    url="https://docs.example.com/account/reset-password",
    snippet="Choose Forgot password on the sign-in page.",
)
CORS_HEADERS = "authorization, content-type, accept, last-event-id, x-end-user-token, x-anonymous-id"
ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "request_id": uuid.uuid4().hex}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StandinGateway:
    allowed_origins: set[str]
    api_base: str = ""
    key: str = WIDGET_KEY
    answer: str = ANSWER
    answer_shown: str = ANSWER_SHOWN
    citation: Citation = field(default_factory=lambda: CITATION)
    token_delay: float = 0.03
    abandoned: str | None = None  # words a failing first provider streams before the turn resets
    conversations: dict[str, ConversationWithMessages] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what an operator does from the console (the tests play the operator) ---

    def operator_reply(self, conversation_id: str, text: str) -> None:
        with self.lock:
            conversation = self.conversations[conversation_id]
            conversation.owner = Owner.HUMAN
            conversation.messages.append(self._message(conversation_id, Role.OPERATOR, text, operator="op-1"))

    def resolve(self, conversation_id: str) -> None:
        with self.lock:
            self.conversations[conversation_id].status = ConversationStatus.RESOLVED

    def return_to_bot(self, conversation_id: str) -> None:
        with self.lock:
            self.conversations[conversation_id].owner = Owner.BOT

    def recorded(self, method: str, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # --- the app ---

    def _message(
        self, conversation_id: str, role: Role, text: str, *, operator: str | None = None
    ) -> Message:
        citations = [CITATION] if role is Role.ASSISTANT else []
        return Message(
            id=f"msg_{time.monotonic_ns():020d}",
            conversation_id=conversation_id,
            role=role,
            text=text,
            created_at=_now(),
            citations=citations,
            provider="extractive" if role is Role.ASSISTANT else None,
            operator_id=operator,
        )

    async def _api(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if request.method == "OPTIONS":
            preflight = {
                "Access-Control-Allow-Origin": origin or "*",
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
            return Response(status_code=204, headers=preflight)
        raw = await request.body()
        body: Any = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {WIDGET_KEY}":
            return _error(401, "unauthorized", "Unknown API key.")
        if origin is None:
            return _error(403, "forbidden", "A widget key is usable only from a web page (no Origin header).")
        if origin not in self.allowed_origins:
            return _error(403, "forbidden", f"The origin {origin} is not allowed for this key.")
        cors = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "x-request-id, retry-after",
            "Vary": "Origin",
        }
        anonymous = request.headers.get("x-anonymous-id", "")
        if not ANONYMOUS_ID.match(anonymous):
            return _error(400, "bad_request", "Widget calls need X-End-User-Token or X-Anonymous-ID.", cors)
        end_user = f"anon:{anonymous}"
        if self.fail_next:
            status, code, extra = self.fail_next.pop(0)
            return _error(status, code, "Injected failure.", {**cors, **extra})
        parts = request.url.path.removeprefix("/v1/conversations").strip("/").split("/")
        if parts == [""] and request.method == "POST":
            if body.get("end_user_id") != end_user:
                return _error(
                    403, "forbidden", "A widget user can only open conversations for themselves.", cors
                )
            return self._create(body, cors)
        conversation = self.conversations.get(parts[0])
        if conversation is None or conversation.end_user_id != end_user:
            return _error(404, "not_found", "No such conversation.", cors)
        if len(parts) == 1 and request.method == "GET":
            return self._get(conversation, request.query_params.get("after"), cors)
        action = parts[1] if len(parts) == 2 else ""
        if action == "messages" and request.method == "POST":
            return self._post_message(conversation, body, request.headers.get("accept", ""), cors)
        if action == "feedback" and request.method == "POST":
            return Response(status_code=204, headers=cors)
        if action == "handoff" and request.method == "POST":
            with self.lock:
                conversation.owner = Owner.HUMAN
            info = HandoffInfo(reason="customer asked for a human", handoff_id="ho-1", ticket_id="T-1")
            return JSONResponse(info.model_dump(mode="json"), headers=cors)
        return _error(404, "not_found", "No such route.", cors)

    def _create(self, body: dict[str, Any], cors: dict[str, str]) -> Response:
        conversation_id = f"conv_{uuid.uuid4().hex[:12]}"
        conversation = ConversationWithMessages(
            id=conversation_id,
            tenant_id="tenant-demo",
            channel=Channel(body.get("channel", "web")),
            end_user_id=body["end_user_id"],
            verified=False,
            owner=Owner.BOT,
            status=ConversationStatus.OPEN,
            created_at=_now(),
            updated_at=_now(),
        )
        with self.lock:
            self.conversations[conversation_id] = conversation
        return JSONResponse(conversation.model_dump(mode="json", exclude={"messages"}), 201, headers=cors)

    def _get(
        self, conversation: ConversationWithMessages, after: str | None, cors: dict[str, str]
    ) -> Response:
        with self.lock:
            payload = conversation.model_dump(mode="json")
        if after:
            payload["messages"] = [m for m in payload["messages"] if m["id"] > after]
        return JSONResponse(payload, headers=cors)

    def _post_message(
        self, conversation: ConversationWithMessages, body: dict[str, Any], accept: str, cors: dict[str, str]
    ) -> Response:
        post = PostMessage.model_validate(body)
        with self.lock:
            user_message = self._message(conversation.id, Role.USER, post.text)
            conversation.messages.append(user_message)
            human = conversation.owner is Owner.HUMAN
        wants_handoff = "person" in post.text.lower() or "человек" in post.text.lower()

        async def stream() -> AsyncIterator[bytes]:
            yield encode_sse(HeartbeatPacket())
            if human:
                result = TurnResult(
                    conversation_id=conversation.id, user_message=user_message, owner=Owner.HUMAN
                )
                yield encode_sse(DonePacket(result=result))
                return
            if wants_handoff:
                info = HandoffInfo(reason="customer asked for a human", handoff_id="ho-1")
                with self.lock:
                    conversation.owner = Owner.HUMAN
                yield encode_sse(HandoffPacket(handoff=info))
                result = TurnResult(
                    conversation_id=conversation.id,
                    user_message=user_message,
                    owner=Owner.HUMAN,
                    handoff=info,
                )
                yield encode_sse(DonePacket(result=result))
                return
            if self.abandoned:
                for word in self.abandoned.split(" "):
                    yield encode_sse(TokenPacket(text=word + " "))
                await asyncio.sleep(1.0)
                yield encode_sse(ResetPacket(reason="stalled mid-answer"))
            for word in ANSWER.split(" "):
                await asyncio.sleep(self.token_delay)
                yield encode_sse(TokenPacket(text=word + " "))
            yield encode_sse(CitationPacket(citation=CITATION))
            reply = self._message(conversation.id, Role.ASSISTANT, ANSWER)
            with self.lock:
                conversation.messages.append(reply)
            result = TurnResult(
                conversation_id=conversation.id,
                user_message=user_message,
                reply=reply,
                owner=Owner.BOT,
                sources=[CITATION.document_id],
            )
            yield encode_sse(DonePacket(result=result))

        if "text/event-stream" not in accept:
            return _error(406, "bad_request", "The stand-in only streams.", cors)
        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={**cors, "Cache-Control": "no-store"}
        )

    async def _host_page(self, request: Request) -> Response:
        """A customer's website with the one script tag; query parameters become data attributes."""
        api = self.api_base
        attrs = " ".join(
            f'data-{name}="{value}"'
            for name, value in request.query_params.items()
            if re.fullmatch("[a-z][a-z-]*", name)
        )
        html = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Acme shop</title>"
            "<style>body{font-family:Georgia,serif;margin:0;padding:24px;background:#fafafa}"
            "div,section,button{all:unset}h1{color:#b00}</style></head><body>"
            "<h1>Acme shop</h1><p>Our host page has aggressive CSS; the widget must not care.</p>"
            f'<script src="{api}/widget.js" data-key="{WIDGET_KEY}" {attrs} async></script>'
            "</body></html>"
        )
        return HTMLResponse(html)

    def app(self) -> Starlette:
        async def widget(_: Request) -> Response:
            return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript")

        async def index(_: Request) -> Response:
            return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        return Starlette(
            routes=[
                Route("/healthz", healthz),
                Route("/widget.js", widget),
                Route("/", index),
                Route("/host", self._host_page),
                Route("/v1/conversations", self._api, methods=["POST", "OPTIONS"]),
                Route("/v1/conversations/{rest:path}", self._api, methods=["GET", "POST", "OPTIONS"]),
            ]
        )


class ServerThread:
    """uvicorn serving an ASGI app on a free loopback port in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- fixtures ---

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture
def standin() -> Iterator[tuple[StandinGateway, str]]:
    """The stand-in gateway (API at ``gateway.api_base``) and the customer's allowed site
    (``http://localhost:PORT``, whose ``/host`` page embeds the widget), fresh per test."""
    gateway = StandinGateway(allowed_origins=set())
    with ServerThread(gateway.app()) as server:
        gateway.api_base = f"http://127.0.0.1:{server.port}"
        site = f"http://localhost:{server.port}"
        gateway.allowed_origins.add(site)
        yield gateway, site


@pytest.fixture
def other_site(standin: tuple[StandinGateway, str]) -> Iterator[str]:
    """Another website (its own port, so its own origin) that embeds the same widget key."""
    gateway, _ = standin
    with ServerThread(gateway.app()) as server:
        yield f"http://localhost:{server.port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in this thread until it stops, which
    would break every later test that runs its own loop."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Shots:
    """Saves numbered screenshots of one test under test-output/browser/<test name>/."""

    def __init__(self, name: str) -> None:
        self.dir = OUTPUT_DIR / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    def take(self, page: Page, step: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path))
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    yield ctx
    ctx.close()


# --- the real fleet (module-scoped: started by the modules that use it) ---

FLEET_ADMIN_TOKEN = "browser-tests-operator-token"


@dataclass
class RealFleet:
    gateway_url: str
    keys: dict[str, str]
    data_dir: Path

    def api(self, key: str = "admin_key", **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {self.keys[key]}", **headers},
            timeout=60.0,
        )


@pytest.fixture(scope="module")
def real_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealFleet]:
    """gateway, chat, retrieval, integrations and analytics (and the demo CRM) as real processes on free ports
    (embedded defaults, the demo knowledge base), with the demo tenant and its keys; waits for the demo KB's
    sync."""
    data_dir = tmp_path_factory.mktemp("browser-fleet")
    specs = [ServiceSpec(name, "127.0.0.1", free_port()) for name in SERVICE_NAMES]
    # The demo CRM, as ``make run`` starts it: the demo tenant's order lookups go there.
    crm_port = free_port()
    specs.append(
        ServiceSpec(
            "demo-crm",
            "127.0.0.1",
            crm_port,
            [sys.executable, "-m", DEMO_CRM_MODULE, "--port", str(crm_port)],
        )
    )
    fleet = Fleet(specs, data_dir, extra_env={"GATEWAY_ADMIN_TOKEN": FLEET_ADMIN_TOKEN})
    fleet.start()
    try:
        ready = fleet.wait_ready(180.0)
        if not all(ready.values()):
            pytest.fail(f"the fleet did not become ready: {ready}; logs in {data_dir / 'logs'}")
        gateway = next(spec for spec in specs if spec.name == "gateway").url
        running = RealFleet(gateway, bootstrap_demo(gateway, FLEET_ADMIN_TOKEN), data_dir)
        set_demo_greeting(gateway, running.keys["admin_key"])  # as ``make run`` does
        deadline = time.monotonic() + 120
        with running.api() as api:
            while time.monotonic() < deadline:
                answer = api.get("/v1/kbs")
                kbs = answer.json().get("items") if answer.status_code == 200 else None
                if kbs and all(kb["chunk_count"] > 0 for kb in kbs):
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"the demo knowledge base was not ingested: {answer.status_code} {answer.text}")
        yield running
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def customer_site(real_fleet: RealFleet) -> Iterator[str]:
    """A customer's website on its own origin (``http://localhost:PORT``, allowed by the demo widget key)
    whose ``/host`` page embeds the fleet's widget with one script tag; query parameters become data-*."""

    async def host(request: Request) -> Response:
        attrs = " ".join(
            f'data-{name}="{value}"'
            for name, value in request.query_params.items()
            if re.fullmatch("[a-z][a-z-]*", name)
        )
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Demo shop</title></head>"
            "<body><h1>Demo shop</h1><p>A customer's site with the Switchboard widget.</p>"
            f'<script src="{real_fleet.gateway_url}/widget.js" data-key="{real_fleet.keys["widget_key"]}" '
            f"{attrs} async></script></body></html>"
        )

    with ServerThread(Starlette(routes=[Route("/host", host)])) as server:
        yield f"http://localhost:{server.port}"
