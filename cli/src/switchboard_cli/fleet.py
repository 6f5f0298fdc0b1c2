"""The local fleet: which processes run, on which ports, and how to start, watch and stop them."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from switchboard_shared.registry import (
    BY_NAME,
    CONSOLE_PORT,
    DEMO_CRM_MODULE,
    DEMO_CRM_OFFSET,
    SERVICE_NAMES,
)
from switchboard_shared.registry import SERVICES as REGISTRY

# Name → default port, derived from the registry (kept for callers of this module).
SERVICES: dict[str, int] = {service.name: service.port for service in REGISTRY}

__all__ = [
    "CONSOLE_PORT",
    "DEMO_CRM_OFFSET",
    "SERVICES",
    "SERVICE_NAMES",
    "Fleet",
    "ServiceSpec",
    "console_specs",
    "demo_crm_specs",
    "fleet_env",
    "fleet_specs",
    "probe",
]


@dataclass
class ServiceSpec:
    name: str
    host: str
    port: int
    argv: list[str] = field(default_factory=list)
    ready_path: str = "/readyz"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def module(self) -> str:
        return f"switchboard_{self.name}"

    def command(self) -> list[str]:
        return self.argv or [sys.executable, "-m", self.module, "--host", self.host, "--port", str(self.port)]


def fleet_specs(host: str, base_port: int | None = None, only: list[str] | None = None) -> list[ServiceSpec]:
    specs = []
    for index, service in enumerate(REGISTRY):
        if only and service.name not in only:
            continue
        port = service.port if base_port is None else base_port + index
        specs.append(ServiceSpec(service.name, host, port))
    return specs


def demo_crm_specs(host: str, base_port: int | None) -> list[ServiceSpec]:
    """The demo CRM that the demo tenant's order lookups go to (demo/crm, ``switchboard-demo-crm``), when
    installed."""
    if importlib.util.find_spec(DEMO_CRM_MODULE) is None:
        return []
    port = (base_port if base_port is not None else BY_NAME["gateway"].port) + DEMO_CRM_OFFSET
    argv = [sys.executable, "-m", DEMO_CRM_MODULE, "--host", host, "--port", str(port)]
    return [ServiceSpec("demo-crm", host, port, argv)]


def console_specs(host: str, console_port: int | None) -> list[ServiceSpec]:
    """The operator console (Streamlit), when installed."""
    specs = []
    console_spec = importlib.util.find_spec("switchboard_console")
    if console_spec is not None and console_spec.origin and importlib.util.find_spec("streamlit") is not None:
        port = console_port or CONSOLE_PORT
        app_path = str(Path(console_spec.origin).with_name("app.py"))
        argv = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            app_path,
            "--server.port",
            str(port),
            "--server.address",
            host,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        specs.append(ServiceSpec("console", host, port, argv, ready_path="/_stcore/health"))
    return specs


def fleet_env(specs: list[ServiceSpec], data_dir: Path) -> dict[str, str]:
    """The environment every local process gets: where the others are and where to keep data."""
    env = {"SWITCHBOARD_DATA_DIR": str(data_dir)}
    for spec in specs:
        if spec.name in BY_NAME:
            env[BY_NAME[spec.name].url_env] = spec.url
        if spec.name == "demo-crm":
            env["INTEGRATIONS_DEMO_CRM_URL"] = spec.url
    demo_kb = Path.cwd() / "demo" / "kb"
    if demo_kb.is_dir():
        env["RETRIEVAL_DEMO_KB_DIR"] = str(demo_kb)
    return env


@dataclass
class Fleet:
    specs: list[ServiceSpec]
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self, later: list[ServiceSpec] | None = None, env_overrides: dict[str, str] | None = None
    ) -> None:
        """Start every spec (or, with ``later``, add and start those: processes that need the fleet first)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        if later:
            self.specs += later
        env = {
            **os.environ,
            **fleet_env(self.specs, self.data_dir),
            **self.extra_env,
            **(env_overrides or {}),
        }
        for spec in later or self.specs:
            log = (logs / f"{spec.name}.log").open("ab")
            self.processes[spec.name] = subprocess.Popen(
                spec.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def exited(self) -> dict[str, int]:
        return {
            name: code for name, process in self.processes.items() if (code := process.poll()) is not None
        }

    def wait_ready(self, timeout: float, only: list[ServiceSpec] | None = None) -> dict[str, bool]:
        deadline = time.monotonic() + timeout
        specs = only or self.specs
        ready = {spec.name: False for spec in specs}
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and not all(ready.values()):
                if self.exited():
                    break
                for spec in specs:
                    if not ready[spec.name]:
                        ready[spec.name] = probe(client, spec.url, spec.ready_path)
                time.sleep(0.1)
        return ready

    def stop(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def probe(client: httpx.Client, url: str, path: str = "/readyz") -> bool:
    try:
        return client.get(f"{url}{path}").status_code == 200
    except httpx.HTTPError:
        return False
