"""Service processes for end-to-end tests: real uvicorn processes on free ports, logs captured to a file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from switchboard_shared.registry import BY_NAME, SERVICES
from switchboard_shared.testing.servers import free_port


class ServiceProcess:
    """``python -m <module>`` with the given environment; waits for ``/readyz``."""

    def __init__(
        self, module: str, env: dict[str, str], *, port: int | None = None, name: str | None = None
    ) -> None:
        self.module = module
        self.name = name or module
        self.port = port or free_port()
        self.env = env
        self.log_path = Path(tempfile.mkdtemp(prefix="sb-svc-")) / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def of(
        cls, service: str, env: dict[str, str], *, port: int | None = None, name: str | None = None
    ) -> ServiceProcess:
        """The fleet service ``service`` (a name of the registry), optionally under another process name
        (a second replica)."""
        return cls(BY_NAME[service].module, env, port=port, name=name or service)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready_timeout: float = 60.0) -> ServiceProcess:
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.logs()[-4000:]}"
                )
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
                # Ready, and the answer came from this process rather than another one on the same port.
                if ready and self.process is not None and _listens(self.process.pid, self.port) is not False:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on loopback ``port`` (None where ``/proc`` cannot
    tell, as outside Linux)."""
    try:
        inodes: set[str] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    except OSError:
        return None
    return False


def start_all(processes: Mapping[str, ServiceProcess], timeout: float = 90.0) -> dict[str, str]:
    """Start every process at once (they load in parallel); returns the failures by name. A process that
    failed is stopped."""

    def start(process: ServiceProcess) -> str | None:
        try:
            process.start(ready_timeout=timeout)
        except (RuntimeError, TimeoutError, OSError) as exc:
            process.stop(kill=True)
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        results = dict(zip(processes, pool.map(start, processes.values()), strict=True))
    return {name: error for name, error in results.items() if error is not None}


def service_env(
    *,
    data_dir: Path,
    urls: Mapping[str, str],
    operator_token: str,
    internal_token: str,
    redis_url: str = "",
    **extra: str,
) -> dict[str, str]:
    """The environment of a test fleet: test mode, JSON logs, known tokens and where every service is
    (``urls``: service name → base URL)."""
    env = {
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": internal_token,
        "SWITCHBOARD_LOG_JSON": "true",
        "SWITCHBOARD_REDIS_URL": redis_url,
        "GATEWAY_ADMIN_TOKEN": operator_token,
        **extra,
    }
    for service in SERVICES:
        if service.name in urls:
            env[service.url_env] = urls[service.name]
    return env
