"""`switchboard up` brings every service up healthy from nothing, and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from switchboard_cli.fleet import SERVICES
from switchboard_shared.testing.servers import free_port

pytestmark = pytest.mark.e2e


def _free_block(size: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + size < 65000 and all(_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_starts_the_fleet_and_stops_it_cleanly(tmp_path: Path) -> None:
    base = _free_block(len(SERVICES) + 12)
    command = [
        sys.executable,
        "-m",
        "switchboard_cli.main",
        "up",
        "--base-port",
        str(base),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    env = {**os.environ, "SWITCHBOARD_LOG_JSON": "true", "COLUMNS": "200"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = all(
                    httpx.get(f"http://127.0.0.1:{base + i}/readyz", timeout=1).status_code == 200
                    for i in range(len(SERVICES))
                )
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        assert ready, "fleet did not become ready"
        status = subprocess.run(
            [sys.executable, "-m", "switchboard_cli.main", "status", "--base-port", str(base)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert status.returncode == 0, status.stdout
        for name in SERVICES:
            assert name in status.stdout
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert "Fleet stopped." in output, output
    time.sleep(0.5)
    for i in range(len(SERVICES)):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{base + i}/healthz", timeout=1)
