"""The gateway as a reverse proxy, against nginx and against calling the upstream directly.

One run, one load generator (wrk, 32 connections), targets alternating round by round:

- ``direct``: a minimal upstream (raw ASGI under uvicorn, a small JSON answer);
- ``gateway``: ``python -m switchboard_gateway`` in front of it (server key checked from its cache, rate
  limiter, request context and access log, proxy hot path);
- ``gateway-aiohttp``: the same with ``GATEWAY_PROXY_CLIENT=aiohttp`` (the hot path on aiohttp's client);
- ``nginx``: nginx (one worker, upstream keep-alive, access log on) in front of the same upstream.

The upstream is pinned to core 0 together with wrk, each proxy to core 1 (2-core machine). Reports
requests/s and p50/p99 per target (medians over rounds) and the ratios; target: gateway ≥ 0.8× nginx's
throughput, ≤ 3 ms added p99 over direct.

Usage: python bench/gateway_proxy.py [--rounds 3] [--seconds 8] [--connections 32]
       python bench/gateway_proxy.py --serve-upstream PORT   (the minimal upstream alone)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import write_result  # noqa: E402

from switchboard_shared.testing.servers import free_port, wait_for_port  # noqa: E402

OPERATOR_TOKEN = "bench-operator-token"
INTERNAL_TOKEN = "bench-internal-token"
UPSTREAM_PATH = "/internal/v1/kbs/bench"
PUBLIC_PATH = "/v1/kbs/bench"
BODY = b'{"id":"kb_bench","name":"Bench","documents":12,"status":"ready","tags":["a","b"]}'


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest honest upstream: reads the request, answers a small JSON."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "gateway_proxy:upstream_app",
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        app_dir=str(HERE),
    )


def pinned(core: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /v1/ {{
            proxy_pass http://backend/internal/v1/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Internal-Token "{token}";
        }}
    }}
}}
"""


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(pinned(0, [*command, url]), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(re.match(r"[\d.]+", value).group(0)) :]  # type: ignore[union-attr]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU of a process and its children (nginx's worker, the taskset'd child)."""
    root = psutil.Process(process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def bootstrap_key(gateway: str) -> str:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    httpx.post(
        f"{gateway}/v1/admin/tenants", json={"id": "bench", "name": "Bench"}, headers=headers
    ).raise_for_status()
    created = httpx.post(
        f"{gateway}/v1/admin/tenants/bench/keys",
        json={"scope": "server", "name": "bench", "requests_per_minute": 100_000_000},
        headers=headers,
    )
    created.raise_for_status()
    key: str = created.json()["key"]
    return key


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve-upstream", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="targets to run (direct gateway nginx)")
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="both proxies without access logs (gateway at log level WARNING, nginx access_log off)",
    )
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (apt-get install -y {tool})")
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-gw-"))
    ports = {"upstream": free_port(), "gateway": free_port(), "nginx": free_port()}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream_process = start(
            pinned(0, [sys.executable, __file__, "--serve-upstream", str(ports["upstream"])]),
            tmp / "upstream.log",
        )
        processes.append(upstream_process)
        gateway_env = {
            "SWITCHBOARD_DATA_DIR": str(tmp),
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "SWITCHBOARD_RETRIEVAL_URL": f"http://127.0.0.1:{ports['upstream']}",
            "GATEWAY_ADMIN_TOKEN": OPERATOR_TOKEN,
            **({"SWITCHBOARD_LOG_LEVEL": "WARNING"} if args.no_access_log else {}),
        }
        ports["gateway-aiohttp"] = free_port()
        gateway_process = start(
            pinned(1, [sys.executable, "-m", "switchboard_gateway", "--port", str(ports["gateway"])]),
            tmp / "gateway.log",
            {**gateway_env, "SWITCHBOARD_DATA_DIR": str(tmp / "h1")},
        )
        processes.append(gateway_process)
        aiohttp_process = start(
            pinned(1, [sys.executable, "-m", "switchboard_gateway", "--port", str(ports["gateway-aiohttp"])]),
            tmp / "gateway-aiohttp.log",
            {**gateway_env, "SWITCHBOARD_DATA_DIR": str(tmp / "aiohttp"), "GATEWAY_PROXY_CLIENT": "aiohttp"},
        )
        processes.append(aiohttp_process)
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp,
                upstream=ports["upstream"],
                port=ports["nginx"],
                token=INTERNAL_TOKEN,
                access_log="off" if args.no_access_log else f"{tmp}/nginx-access.log",
            )
        )
        nginx_process = start(pinned(1, ["nginx", "-p", str(tmp), "-c", str(conf)]), tmp / "nginx.log")
        processes.append(nginx_process)
        for port in ports.values():
            wait_for_port(port, timeout=60)
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        gateway_aiohttp = f"http://127.0.0.1:{ports['gateway-aiohttp']}"
        deadline = time.monotonic() + 60
        for url in (gateway, gateway_aiohttp):
            while httpx.get(f"{url}/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
        key = bootstrap_key(gateway)
        key_aiohttp = bootstrap_key(gateway_aiohttp)
        targets = {
            "direct": (f"http://127.0.0.1:{ports['upstream']}{UPSTREAM_PATH}", {}),
            "gateway": (f"{gateway}{PUBLIC_PATH}", {"Authorization": f"Bearer {key}"}),
            "gateway-aiohttp": (
                f"{gateway_aiohttp}{PUBLIC_PATH}",
                {"Authorization": f"Bearer {key_aiohttp}"},
            ),
            "nginx": (f"http://127.0.0.1:{ports['nginx']}{PUBLIC_PATH}", {}),
        }
        proxy_of = {
            "direct": None,
            "gateway": gateway_process,
            "gateway-aiohttp": aiohttp_process,
            "nginx": nginx_process,
        }
        if args.only:
            targets = {name: value for name, value in targets.items() if name in args.only}
        for name, (url, headers) in list(targets.items()):
            check = httpx.get(url, headers=headers)
            assert check.status_code == 200 and check.content == BODY, (
                name,
                check.status_code,
                check.text[:200],
            )
            wrk(url, 2, args.connections, headers)  # warm-up: pools filled, caches hot
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for round_number in range(args.rounds):
            for name, (url, headers) in targets.items():
                proxy = proxy_of[name]
                before = (cpu_seconds(upstream_process), cpu_seconds(proxy) if proxy else 0.0)
                result = wrk(url, args.seconds, args.connections, headers)
                after = (cpu_seconds(upstream_process), cpu_seconds(proxy) if proxy else 0.0)
                result["upstream_cpu_us"] = (after[0] - before[0]) / result["requests"] * 1e6
                result["proxy_cpu_us"] = (after[1] - before[1]) / result["requests"] * 1e6
                samples[name].append(result)
                print(
                    f"round {round_number + 1} {name:8s} {result['rps']:9.0f} req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  proxy CPU {result['proxy_cpu_us']:.0f} us/req  upstream CPU {result['upstream_cpu_us']:.0f} us/req  non-2xx {result['non_2xx']:.0f}",
                    flush=True,
                )
        rows = []
        medians = {
            name: {
                metric: statistics.median(s[metric] for s in runs)
                for metric in ("rps", "p50_ms", "p99_ms", "proxy_cpu_us", "upstream_cpu_us")
            }
            for name, runs in samples.items()
        }
        for name, median in medians.items():
            rows.append(
                {
                    "target": name,
                    "req/s": round(median["rps"]),
                    "p50 ms": round(median["p50_ms"], 2),
                    "p99 ms": round(median["p99_ms"], 2),
                    "proxy CPU us/req": round(median["proxy_cpu_us"]),
                    "upstream CPU us/req": round(median["upstream_cpu_us"]),
                    "non-2xx": int(sum(s["non_2xx"] for s in samples[name])),
                }
            )
        ratios: dict[str, float] = {}
        if "gateway" in medians and "nginx" in medians:
            ratios["gateway/nginx throughput"] = medians["gateway"]["rps"] / medians["nginx"]["rps"]
        if "gateway" in medians and "direct" in medians:
            ratios["gateway added p99 ms"] = medians["gateway"]["p99_ms"] - medians["direct"]["p99_ms"]
            ratios["gateway/direct throughput"] = medians["gateway"]["rps"] / medians["direct"]["rps"]
        if "gateway" in medians and "nginx" in medians and medians["gateway"]["proxy_cpu_us"]:
            ratios["gateway/nginx CPU per request"] = (
                medians["gateway"]["proxy_cpu_us"] / medians["nginx"]["proxy_cpu_us"]
            )
            # Throughput each proxy could reach on one whole core of its own (1 / CPU per request).
            ratios["gateway/nginx one-core capacity"] = (
                medians["nginx"]["proxy_cpu_us"] / medians["gateway"]["proxy_cpu_us"]
            )
        if "gateway-aiohttp" in medians and "nginx" in medians:
            ratios["gateway-aiohttp/nginx throughput"] = (
                medians["gateway-aiohttp"]["rps"] / medians["nginx"]["rps"]
            )
            ratios["gateway-aiohttp/nginx CPU per request"] = (
                medians["gateway-aiohttp"]["proxy_cpu_us"] / medians["nginx"]["proxy_cpu_us"]
            )
        if "nginx" in medians and "direct" in medians:
            ratios["nginx added p99 ms"] = medians["nginx"]["p99_ms"] - medians["direct"]["p99_ms"]
        for name, value in ratios.items():
            print(f"{name}: {value:.2f}")
        notes = (
            f"wrk -t1 -c{args.connections}, {args.rounds} alternating rounds of {args.seconds} s, medians. "
            "Upstream + wrk on core 0, each proxy on core 1; shared 2-core machine (other jobs running). "
            + "; ".join(f"{name}: {value:.2f}" for name, value in ratios.items())
        )
        if len(targets) == 4:
            scenario = "gateway_proxy-no-access-log" if args.no_access_log else "gateway_proxy"
            if args.no_access_log:
                notes = "Access logs off on both proxies. " + notes
            write_result(scenario, rows, notes=notes, extra={"ratios": ratios, "samples": samples})
        return 0
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
