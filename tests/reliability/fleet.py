"""The fleet in production shape for the reliability suite, and the parts its faults act on.

- ``PostgresCluster``: a throwaway PostgreSQL server that can be stopped and started again on the same
  port and data directory (``pg_ctl``), with one database per service.
- ``ThreadedApp``: an ASGI app (a stand-in for an outside system) served by uvicorn in a thread.
- ``RoundRobinProxy``: a TCP balancer in front of the chat replicas that skips a replica it cannot
  connect to, as a Kubernetes Service does with a dead pod's endpoint.
- ``LLMStandIn``: an OpenAI-compatible ``/v1/chat/completions`` server that can answer, fail with 500,
  time out or stall mid-stream.
- ``fault_wrapper``: ASGI middleware that makes a stand-in (the demo CRM) slow or failing on demand.
- ``ReliabilityFleet``: every service as a real process (two chat replicas, two gateway replicas)
  sharing real PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from switchboard_cli.demo import bootstrap_demo
from switchboard_shared.registry import BY_NAME, SERVICE_NAMES, SERVICES
from switchboard_shared.testing.processes import ServiceProcess, service_env, start_all
from switchboard_shared.testing.servers import (
    RedisServer,
    _as_postgres_user,
    find_postgres_bin,
    free_port,
    wait_for_port,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPERATOR_TOKEN = "reliability-operator-token"
INTERNAL_TOKEN = "reliability-internal-token"


# ----------------------------------------------------------------------------------------- PostgreSQL


class PostgresCluster:
    """initdb once; ``start``/``stop`` keep the port and the data (a restart, not a new server)."""

    def __init__(self) -> None:
        initdb = find_postgres_bin("initdb")
        pg_ctl = find_postgres_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) are not installed")
        self.pg_ctl = pg_ctl
        self.prefix, uid, gid = _as_postgres_user()
        self.base = Path(tempfile.mkdtemp(prefix="sb-rel-pg-"))
        if uid is not None and gid is not None:
            os.chown(self.base, uid, gid)
        self.data = self.base / "data"
        self.port = free_port()
        subprocess.run(
            [*self.prefix, initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            + ["--no-sync"],
            check=True,
            capture_output=True,
        )
        self.running = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -F -c fsync=off "
            "-c max_connections=300"
        )
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.base / "log")]
            + ["-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
        )
        wait_for_port(self.port)
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"], capture_output=True
        )
        self.running = False

    def create_databases(self, names: tuple[str, ...]) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                for name in names:
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def query(self, database: str, sql: str, *args: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.url(database, driver="postgresql"))
            try:
                return [dict(row) for row in await conn.fetch(sql, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------------------ stand-ins and the balancer


class ThreadedApp:
    """Serve an ASGI app with uvicorn on a free loopback port, in a daemon thread."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.name = name
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"standin-{name}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedApp:
        self.thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class FaultMode:
    """What a wrapped stand-in does now: ``ok``, ``slow`` (sleeps ``delay`` first) or ``fail`` (503)."""

    mode: str = "ok"
    delay: float = 3.0
    seen: int = 0


def fault_wrapper(app: ASGIApp, fault: FaultMode) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith(("/healthz", "/readyz")):
            fault.seen += 1
            if fault.mode == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.mode == "fail":
                body = b'{"error": "maintenance"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return wrapped


OBEYED_ARGUMENTS: dict[str, dict[str, str]] = {
    "get_order_status": {"order_number": "B-2001"},
    "create_ticket": {"subject": "Maintenance notice", "description": "Opened as the notice instructed"},
}


class LLMStandIn:
    """An OpenAI-compatible chat completions server (streaming and not) with switchable failure modes.

    ``ok``: answers from the first ``[1]`` passage of the prompt; ``obey``: calls a tool it was offered (the
    one named ``obey_tool`` when set and offered, else the first); ``error``: HTTP 500 with OpenAI's error
    body; ``timeout``: accepts the request and sends nothing for ``hang`` seconds; ``stall``: streams two
    chunks, then stalls for ``hang`` seconds without finishing.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.hang = 30.0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.obey_tool: str | None = None
        self.app = ThreadedApp(self._asgi, "llm")

    @property
    def base_url(self) -> str:
        return f"{self.app.url}/v1"

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/v1/chat/completions":
            await self._json(send, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        request = json.loads(body or b"{}")
        self.requests.append(request)
        self.headers.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        mode = self.mode
        if mode == "error":
            await self._json(
                send, 500, {"error": {"message": "The server had an error", "type": "server_error"}}
            )
            return
        if mode == "timeout":
            await asyncio.sleep(self.hang)
            await self._json(send, 504, {"error": {"message": "late", "type": "server_error"}})
            return
        if mode == "obey" and request.get("tools"):
            offered = [tool["function"]["name"] for tool in request["tools"]]
            if self.obey_tool is None or self.obey_tool in offered:
                await self._tool_call(send, request, self.obey_tool or offered[0])
                return
        answer = "According to our help centre, this is answered in the knowledge base [1]."
        created = int(time.time())
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = request.get("model", "local-model")
        if not request.get("stream"):
            await self._json(
                send,
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                },
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        pieces = [answer[: len(answer) // 2], answer[len(answer) // 2 :]]
        await send({"type": "http.response.body", "body": chunk({"role": "assistant"}), "more_body": True})
        await send({"type": "http.response.body", "body": chunk({"content": pieces[0]}), "more_body": True})
        if mode == "stall":
            await asyncio.sleep(self.hang)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.body", "body": chunk({"content": pieces[1]}), "more_body": True})
        await send({"type": "http.response.body", "body": chunk({}, "stop"), "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    @staticmethod
    async def _tool_call(send: Send, request: dict[str, Any], tool: str) -> None:
        """A model that obeys an injected instruction: it calls the tool the instruction names (``obey_tool``)
        or the first tool it was offered."""
        arguments = json.dumps(OBEYED_ARGUMENTS.get(tool, {}))
        call = {
            "index": 0,
            "id": "call_injected",
            "type": "function",
            "function": {"name": tool, "arguments": arguments},
        }
        payload = {
            "id": "chatcmpl-injected",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "local-model"),
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "finish_reason": None}
            ],
        }
        done = {**payload, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        if not request.get("stream"):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{k: v for k, v in call.items() if k != "index"}],
            }
            body = {
                **payload,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            }
            await LLMStandIn._json(send, 200, body)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in (payload, done):
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    @staticmethod
    async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class PostHogStandIn:
    """PostHog's capture API (``POST /batch/``): keeps every payload so tests can read what left the fleet."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.app = ThreadedApp(self._asgi, "posthog")

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with contextlib.suppress(ValueError):
            self.payloads.append(json.loads(body))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status": 1}'})


class TelegramStandIn:
    """The Bot API's ``getMe`` for the tokens in ``bots`` (token → bot id); any other token gets Telegram's
    401 ``{"ok": false, "error_code": 401, "description": "Unauthorized"}``. ``sendMessage`` answers ok."""

    def __init__(self) -> None:
        self.bots: dict[str, int] = {}
        self.calls: list[str] = []
        self.app = ThreadedApp(self._asgi, "telegram")

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        match = re.match(r"^/bot([^/]+)/(\w+)$", scope["path"])
        self.calls.append(scope["path"])
        if match is None:
            await LLMStandIn._json(send, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = match.groups()
        bot_id = self.bots.get(token)
        if bot_id is None:
            await LLMStandIn._json(send, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        result: dict[str, Any] = {"message_id": len(self.calls), "date": int(time.time())}
        if method == "getMe":
            result = {"id": bot_id, "is_bot": True, "first_name": "Shop bot", "username": f"shop{bot_id}_bot"}
        await LLMStandIn._json(send, 200, {"ok": True, "result": result})


class RoundRobinProxy:
    """A TCP balancer: each new connection goes to the next backend that accepts a connection."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.cycle = itertools.count()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chat-balancer", daemon=True)
        self.server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self.loop
        )
        self.server = future.result(timeout=10)
        return self

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        start = next(self.cycle)
        for offset in range(len(self.backends)):
            port = self.backends[(start + offset) % len(self.backends)]
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=1.0)
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------ fleet


@dataclass
class ReliabilityFleet:
    postgres: PostgresCluster
    redis: RedisServer
    llm: LLMStandIn
    crm: ThreadedApp
    crm_fault: FaultMode
    posthog: PostHogStandIn
    telegram: TelegramStandIn
    balancer: RoundRobinProxy
    data_dir: Path
    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    demo: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    kb_id: str = ""

    @property
    def gateway(self) -> str:
        return self.processes["gateway"].url

    @property
    def gateway_b(self) -> str:
        return self.processes["gateway-b"].url

    def url(self, name: str) -> str:
        return self.processes[name].url

    def logs(self, name: str) -> str:
        return self.processes[name].logs()

    def all_logs(self) -> dict[str, str]:
        return {name: process.logs() for name, process in self.processes.items()}

    def chat_db(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.postgres.query("sb_chat", sql, *args)

    def db(self, service: str, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.postgres.query(f"sb_{service}", sql, *args)

    def restart(self, name: str, *, timeout: float = 120.0) -> None:
        process = self.processes[name]
        process.stop(kill=True)
        process.start(ready_timeout=timeout)

    def metrics(self, name: str) -> str:
        # The gateway's /metrics answers only a scraper with a token (its port is the public one).
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        return httpx.get(f"{self.url(name)}/metrics", headers=headers, timeout=5.0).text

    def readyz(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url(name)}/readyz", timeout=5.0).json()
        return body


def metric_total(text: str, name: str) -> float:
    """Sum of every sample of a Prometheus metric (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            match = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+)", line)
            if match:
                total += float(match.group(2))
    return total


def reliability_env(urls: dict[str, str], *, data_dir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """The test fleet's environment with quick breakers (three failures open one for three seconds)."""
    breakers = {}
    for service in SERVICES:
        breakers[f"{service.env_prefix}BREAKER_FAIL_MAX"] = "3"
        breakers[f"{service.env_prefix}BREAKER_RESET_SECONDS"] = "3"
    return service_env(
        data_dir=data_dir,
        urls=urls,
        operator_token=OPERATOR_TOKEN,
        internal_token=INTERNAL_TOKEN,
        redis_url=redis_url,
        **breakers,
        **extra,
    )


KB_DOCUMENTS = {
    "shipping.md": "# Shipping\n\nStandard shipping takes 3 to 5 business days within the country. "
    "Express shipping arrives the next business day when ordered before 2 pm. "
    "International shipping takes 7 to 14 days and customs fees are paid by the recipient.\n",
    "returns.md": "# Returns and refunds\n\nYou can return any item within 30 days of delivery for a full "
    "refund. Refunds are issued to the original payment method within 5 business days after the "
    "return arrives at our warehouse. Opened software cannot be returned.\n",
    "account.md": "# Account and passwords\n\nTo reset your password, open the sign-in page and choose "
    "Forgot password; a reset link is emailed to you and is valid for one hour. "
    "Two-factor authentication can be turned on in Settings under Security.\n",
    "warranty.md": "# Warranty\n\nAll devices carry a two-year limited warranty covering manufacturing "
    "defects. Water damage and accidental drops are not covered by the warranty.\n",
}


def wait_job(client: httpx.Client, job_id: str, *, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 200:
            job = response.json()
            if job["status"] in ("succeeded", "failed"):
                return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} not finished after {timeout}s: {job}")


def retrying(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A setup call that honours 503/429 + Retry-After (a breaker opened by an earlier fault, or a limit the
    load of an earlier test used up)."""
    deadline = time.monotonic() + 60
    while True:
        response = client.request(method, path, **kwargs)
        if response.status_code not in (429, 503) or time.monotonic() > deadline:
            return response
        time.sleep(min(float(response.headers.get("retry-after", "1")), 3.0))


def ingest_kb(gateway: str, server_key: str, documents: dict[str, str], name: str) -> str:
    with httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {server_key}"}, timeout=60.0
    ) as client:
        created = retrying(client, "POST", "/v1/kbs", json={"name": name, "embedding_model": "minilm"})
        if created.status_code >= 400:
            raise RuntimeError(f"knowledge base not created: {created.status_code} {created.text[:300]}")
        kb_id = str(created.json()["id"])
        files = [
            ("files", (filename, text.encode(), "text/markdown")) for filename, text in documents.items()
        ]
        upload = retrying(client, "POST", f"/v1/kbs/{kb_id}/files", files=files)
        if upload.status_code >= 400:
            raise RuntimeError(f"upload refused: {upload.status_code} {upload.text[:300]}")
        job = wait_job(client, upload.json()["job"]["id"])
        if job["status"] != "succeeded":
            raise RuntimeError(f"ingestion failed: {job}")
        return kb_id


def make_tenant(gateway: str, tenant_id: str) -> dict[str, str]:
    """A second tenant with a key of each scope (for isolation tests)."""
    with httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10.0
    ) as client:
        client.post("/v1/admin/tenants", json={"id": tenant_id, "name": f"Tenant {tenant_id}"})
        secret = client.get(f"/v1/admin/tenants/{tenant_id}/identity-secret").json()["identity_secret"]
        result = {"tenant": tenant_id, "identity_secret": str(secret)}
        for scope in ("widget", "server", "admin"):
            body: dict[str, Any] = {"scope": scope, "name": f"{tenant_id}-{scope}"}
            if scope == "widget":
                body["allowed_origins"] = ["https://shop.example"]
            created = client.post(f"/v1/admin/tenants/{tenant_id}/keys", json=body)
            created.raise_for_status()
            result[f"{scope}_key"] = str(created.json()["key"])
        return result


@contextlib.contextmanager
def reliability_fleet() -> Iterator[ReliabilityFleet]:
    postgres = PostgresCluster()
    postgres.start()
    redis = RedisServer()
    redis.start()
    llm = LLMStandIn()
    llm.app.start()
    from switchboard_demo_crm.app import create_demo_crm

    crm_fault = FaultMode()
    crm = ThreadedApp(fault_wrapper(create_demo_crm(), crm_fault), "crm").start()
    posthog = PostHogStandIn()
    posthog.app.start()
    telegram = TelegramStandIn()
    telegram.app.start()
    chat_ports = [free_port(), free_port()]
    balancer = RoundRobinProxy(chat_ports).start()
    data_dir = Path(tempfile.mkdtemp(prefix="sb-rel-"))
    ports = {name: free_port() for name in ("gateway", "gateway-b", "retrieval", "integrations", "analytics")}
    urls = {
        "gateway": f"http://127.0.0.1:{ports['gateway']}",
        "chat": balancer.url,
        "retrieval": f"http://127.0.0.1:{ports['retrieval']}",
        "integrations": f"http://127.0.0.1:{ports['integrations']}",
        "analytics": f"http://127.0.0.1:{ports['analytics']}",
    }
    postgres.create_databases(tuple(f"sb_{name}" for name in SERVICE_NAMES))
    env = reliability_env(
        urls,
        data_dir=data_dir,
        redis_url=redis.url,
        CHAT_DEFAULT_PROVIDERS="openai-compatible,extractive",
        CHAT_OPENAI_COMPATIBLE_BASE_URL=llm.base_url,
        CHAT_OPENAI_COMPATIBLE_API_KEY="sk-standin-secret-llm-key",
        CHAT_PROVIDER_TIMEOUT_SECONDS="2",
        CHAT_PROVIDER_TOTAL_TIMEOUT_SECONDS="6",
        CHAT_PROVIDER_BREAKER_FAIL_MAX="3",
        CHAT_PROVIDER_BREAKER_RESET_SECONDS="3",
        CHAT_INTEGRATIONS_TIMEOUT_SECONDS="3",
        CHAT_RETRIEVAL_TIMEOUT_SECONDS="3",
        CHAT_LOCK_WAIT_SECONDS="20",
        GATEWAY_UPSTREAM_TIMEOUT_SECONDS="15",
        GATEWAY_STREAM_TIMEOUT_SECONDS="30",
        INTEGRATIONS_DEMO_CRM_URL=crm.url,
        INTEGRATIONS_CONNECTOR_TIMEOUT="2",
        INTEGRATIONS_CRM_CACHE_TTL="0.5",
        RETRIEVAL_DEFAULT_EMBEDDING_MODEL="minilm",
        RETRIEVAL_SCHEDULER_INTERVAL_SECONDS="0",
        RETRIEVAL_EMBEDDING_THREADS="1",
        RETRIEVAL_URL_ALLOWLIST="[]",
        # Tenants may point a provider at the LLM stand-in under another name (tests of key separation).
        CHAT_URL_ALLOWLIST=json.dumps([f"localhost:{llm.app.port}"]),
        INTEGRATIONS_TELEGRAM_API_BASE=telegram.app.url,
        # The webhook tests' Zendesk connector points at the discard port: it is never called.
        INTEGRATIONS_URL_ALLOWLIST=json.dumps(["127.0.0.1:9"]),
        ANALYTICS_POSTHOG_API_KEY="phc_standin_project_key",
        ANALYTICS_POSTHOG_HOST=posthog.app.url,
        ANALYTICS_POSTHOG_INTERVAL_SECONDS="1",
        ANALYTICS_POSTHOG_SETTLE_SECONDS="0",
        ANALYTICS_PSEUDONYM_SALT="reliability-salt",
    )

    def process(name: str, service: str, port: int) -> ServiceProcess:
        own = {**env, f"{BY_NAME[service].env_prefix}DATABASE_URL": postgres.url(f"sb_{service}")}
        return ServiceProcess.of(service, own, port=port, name=name)

    processes = {
        "gateway": process("gateway", "gateway", ports["gateway"]),
        "gateway-b": process("gateway-b", "gateway", ports["gateway-b"]),
        "chat-a": process("chat-a", "chat", chat_ports[0]),
        "chat-b": process("chat-b", "chat", chat_ports[1]),
        "retrieval": process("retrieval", "retrieval", ports["retrieval"]),
        "integrations": process("integrations", "integrations", ports["integrations"]),
        "analytics": process("analytics", "analytics", ports["analytics"]),
    }
    fleet = ReliabilityFleet(
        postgres, redis, llm, crm, crm_fault, posthog, telegram, balancer, data_dir, env, processes=processes
    )
    try:
        # Migrations race when two replicas of one service start at once: the first of each goes alone.
        first = {
            name: processes[name] for name in ("gateway", "chat-a", "retrieval", "integrations", "analytics")
        }
        failures = start_all(first, timeout=180.0)
        failures |= start_all({"gateway-b": processes["gateway-b"], "chat-b": processes["chat-b"]})
        if failures:
            detail = "\n".join(f"{name}: {why[-1500:]}" for name, why in failures.items())
            raise RuntimeError(f"the fleet did not start:\n{detail}")
        fleet.demo = bootstrap_demo(fleet.gateway, OPERATOR_TOKEN)
        fleet.other = make_tenant(fleet.gateway, "rivals")
        fleet.kb_id = ingest_kb(fleet.gateway, fleet.demo["server_key"], KB_DOCUMENTS, "help centre")
        yield fleet
    finally:
        for proc in processes.values():
            proc.stop()
        balancer.stop()
        for app in (llm.app, crm, posthog.app, telegram.app):
            app.stop()
        redis.cleanup()
        postgres.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
