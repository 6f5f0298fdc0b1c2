"""Two real service processes: identity propagation into the other's logs, and the breaker's life cycle."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

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
