"""Two real service processes: identity propagation into the other's logs, and the breaker's life cycle."""

from __future__ import annotations

import json
import socket
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from switchboard_gateway.proxy.upstreams import POOL_KEEPALIVE_SECONDS
from switchboard_shared.http_client import POOL_IDLE_SECONDS
from switchboard_shared.settings import ServiceSettings
from switchboard_shared.testing.processes import ServiceProcess
from switchboard_shared.testing.servers import free_port

pytestmark = pytest.mark.e2e
RELAY = "switchboard_shared.testing.relay"


@pytest.fixture
def pair() -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    downstream = ServiceProcess(RELAY, {}, name="downstream")
    upstream = ServiceProcess(
        RELAY,
        {
            "RELAY_DOWNSTREAM_URL": downstream.url,
            "RELAY_BREAKER_FAIL_MAX": "3",
            "RELAY_BREAKER_RESET_SECONDS": "1.5",
            "RELAY_HTTP_RETRIES": "0",
            "RELAY_HTTP_CONNECT_TIMEOUT": "0.5",
        },
        name="upstream",
    )
    downstream.start()
    upstream.start()
    try:
        yield upstream, downstream
    finally:
        upstream.stop()
        downstream.stop()


def test_request_id_and_traceparent_reach_the_other_process(
    pair: tuple[ServiceProcess, ServiceProcess],
) -> None:
    upstream, downstream = pair
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    response = httpx.get(
        f"{upstream.url}/relay",
        headers={"X-Request-ID": "e2e-req-1", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "e2e-req-1"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in downstream.logs().splitlines() if line.startswith("{")]
        echoed = [e for e in events if e.get("event") == "echo_received"]
        if echoed:
            break
        time.sleep(0.1)
    assert echoed, downstream.logs()
    assert echoed[0]["request_id"] == "e2e-req-1"
    assert echoed[0]["traceparent"].startswith(f"00-{trace_id}-")
    assert not echoed[0]["traceparent"].startswith(f"00-{trace_id}-b7ad6b7169203331")  # a new span


def test_breaker_opens_fails_fast_and_closes(pair: tuple[ServiceProcess, ServiceProcess]) -> None:
    upstream, downstream = pair
    with httpx.Client(base_url=upstream.url, timeout=10) as client:
        assert client.get("/relay").json()["breaker"] == "closed"
        downstream.stop(kill=True)

        failures = [client.get("/relay") for _ in range(3)]
        assert [r.status_code for r in failures] == [503, 503, 503]
        assert all(r.json()["error"]["request_id"] for r in failures)
        assert client.get("/readyz").json()["breakers"]["downstream"] == "open"

        fast: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            response = client.get("/relay")
            fast.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 503
            assert "circuit open" in response.json()["error"]["message"]
            assert response.headers["retry-after"]
        median = statistics.median(fast)
        print(
            f"breaker fast-fail latency: median {median:.2f} ms, max {max(fast):.2f} ms (client round trip)"
        )
        assert median < 250  # far below the 500 ms connect timeout a closed breaker would wait

        restarted = ServiceProcess(RELAY, {}, port=downstream.port, name="downstream")
        restarted.start()
        try:
            time.sleep(1.6)
            assert client.get("/readyz").json()["breakers"]["downstream"] == "half-open"
            recovered = client.get("/relay")
            assert recovered.status_code == 200
            assert recovered.json()["breaker"] == "closed"
        finally:
            restarted.stop()


def test_free_port_is_free() -> None:
    port = free_port()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)


def _get(sock: socket.socket, path: str) -> bytes:
    """One keep-alive GET on an open socket; the response's bytes (empty when the server had closed it)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: relay\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_an_idle_connection_outlives_the_idle_limit_of_the_clients_in_front(
    pair: tuple[ServiceProcess, ServiceProcess],
) -> None:
    """The gateway's pool reuses a connection idle up to 4 s, the services' clients up to 10 s. A service that
    closed idle connections sooner (uvicorn's own default is 5 s) closes some under a request already on its
    way: under load that surfaced as a rare 503 on a customer's message."""
    assert ServiceSettings().keep_alive_seconds > max(POOL_IDLE_SECONDS, POOL_KEEPALIVE_SECONDS) + 5
    upstream, _ = pair
    with socket.create_connection(("127.0.0.1", upstream.port), timeout=10) as sock:
        assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")
        time.sleep(POOL_KEEPALIVE_SECONDS + 2.5)  # past the gateway's idle limit and uvicorn's default
        assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")


def test_the_keep_alive_setting_reaches_the_server() -> None:
    relay = ServiceProcess(RELAY, {"SWITCHBOARD_KEEP_ALIVE_SECONDS": "1"}, name="short-keep-alive").start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
            assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")
            time.sleep(2.5)
            assert sock.recv(1) == b""  # closed by the server
    finally:
        relay.stop()
