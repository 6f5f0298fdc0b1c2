"""docker-compose.yml through the real Compose v2 binary: valid, complete, ordered by health."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DB_SERVICES, FLEET, REPO

PORTS = {
    "gateway": 8000,
    "chat": 8001,
    "retrieval": 8002,
    "integrations": 8003,
    "analytics": 8004,
    "console": 8501,
}


def example_env(tmp_path: Path, *, leave_out: str | None = None) -> Path:
    """.env.example with every REQUIRED value filled in (as an operator would), minus ``leave_out``."""
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"([A-Z0-9_]+)=", line)
        if match and match[1] != leave_out:
            line = f"{match[1]}=test-{match[1].lower().replace('_', '-')}"
        lines.append(line)
    path = tmp_path / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose(binary: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(binary),
            "--project-directory",
            str(REPO),
            "-f",
            str(REPO / "docker-compose.yml"),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(env_file.parent)},
    )


@pytest.fixture
def model(compose_bin: Path, tmp_path: Path) -> dict[str, Any]:
    completed = compose(compose_bin, example_env(tmp_path), "config", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    loaded: dict[str, Any] = json.loads(completed.stdout)
    return loaded


def test_compose_config_is_valid(compose_bin: Path, tmp_path: Path) -> None:
    completed = compose(compose_bin, example_env(tmp_path), "config", "-q")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""


@pytest.mark.parametrize(
    "required",
    [
        "SWITCHBOARD_INTERNAL_TOKEN",
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "GATEWAY_ADMIN_TOKEN",
        "ANALYTICS_PSEUDONYM_SALT",
    ],
)
def test_missing_secret_stops_compose(compose_bin: Path, tmp_path: Path, required: str) -> None:
    completed = compose(compose_bin, example_env(tmp_path, leave_out=required), "config", "-q")
    assert completed.returncode != 0
    assert f"required variable {required} is missing" in completed.stderr


def test_fleet_waits_for_healthy_backing_services_and_migrations(model: dict[str, Any]) -> None:
    services = model["services"]
    assert {"postgres", "redis", "chroma", "demo-crm"} <= set(services)
    for backing in ("postgres", "redis", "chroma"):
        assert services[backing]["healthcheck"]["test"], backing
    for name in DB_SERVICES:
        service = services[name]
        depends = service["depends_on"]
        assert depends[f"migrate-{name}"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert service["environment"][f"{name.upper()}_AUTO_MIGRATE"] == "false"
        url = service["environment"][f"{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and url.endswith(f"@postgres:5432/{name}")
        migrate = services[f"migrate-{name}"]
        assert migrate["image"] == service["image"]
        assert migrate["entrypoint"] == ["python", "-m", "switchboard_shared.migrate"]
        assert migrate["command"] == [name]
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert migrate["environment"][f"{name.upper()}_DATABASE_URL"] == url
    assert services["retrieval"]["depends_on"]["chroma"]["condition"] == "service_healthy"
    assert services["retrieval"]["environment"]["RETRIEVAL_CHROMA_URL"] == "http://chroma:8000"
    (demo_kb,) = [m for m in services["retrieval"]["volumes"] if m["type"] == "bind"]
    assert (demo_kb["target"], demo_kb["read_only"]) == (
        services["retrieval"]["environment"]["RETRIEVAL_DEMO_KB_DIR"],
        True,
    )
    assert Path(demo_kb["source"]).is_dir()
    assert services["integrations"]["depends_on"]["demo-crm"]["condition"] == "service_healthy"
    assert services["console"]["depends_on"]["gateway"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", FLEET)
def test_each_service_is_healthchecked_hardened_and_on_its_usual_port(
    model: dict[str, Any], name: str
) -> None:
    service = model["services"][name]
    probe = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{PORTS[name]}/" in probe
    assert service["build"]["dockerfile"] == f"services/{name}/Dockerfile"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    (port,) = service["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == (
        "127.0.0.1",
        str(PORTS[name]),
        PORTS[name],
    )
    for key, value in service["environment"].items():
        if key.endswith(("_TOKEN", "_PASSWORD", "_SALT")):
            assert value and value.startswith("test-"), f"{name}.{key} must come from .env"


def test_state_lives_in_named_volumes(model: dict[str, Any]) -> None:
    volumes = set(model["volumes"])
    assert {"postgres-data", "redis-data", "chroma-data"} <= volumes
    mounts = {
        name: {m["source"] for m in service.get("volumes", []) if m["type"] == "volume"}
        for name, service in model["services"].items()
    }
    assert mounts["postgres"] == {"postgres-data"}
    assert mounts["redis"] == {"redis-data"}
    assert mounts["chroma"] == {"chroma-data"}
    init = [m for m in model["services"]["postgres"]["volumes"] if m["type"] == "bind"]
    assert init[0]["target"] == "/docker-entrypoint-initdb.d/10-databases.sql"
    sql = Path(init[0]["source"]).read_text()
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", sql)) == sorted(DB_SERVICES)


def test_optional_provider_keys_stay_unset_unless_given(model: dict[str, Any]) -> None:
    chat = model["services"]["chat"]["environment"]
    # An empty string would count as "configured" in the settings; unset keys are absent or null.
    assert chat.get("CHAT_OPENAI_API_KEY") is None
