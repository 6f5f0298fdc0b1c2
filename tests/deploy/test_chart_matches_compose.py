"""The Helm chart and docker-compose.yml run each service the same way: the same image entrypoint and
arguments (the Dockerfile's), the same port, the same readiness path, and the same settings (names, and the
values of everything that is not a host name or a credential). Where they differ on purpose, the difference
is listed below with its reason, so that any other drift between the two fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import FLEET, REPO, Rendered
from tests.deploy.test_compose import compose, example_env

# Settings only one of the two sets, and why.
ONLY_IN_CHART: dict[str, dict[str, str]] = {
    "gateway": {
        "GATEWAY_METRICS_TOKEN": "the chart protects /metrics for a cluster's Prometheus; compose publishes "
        "no metrics scraper",
    },
    "console": {
        key: "the chart gives every service the fleet's common settings; the console reads only the gateway's"
        for key in (
            "SWITCHBOARD_ANALYTICS_URL",
            "SWITCHBOARD_CHAT_URL",
            "SWITCHBOARD_DATA_DIR",
            "SWITCHBOARD_INTEGRATIONS_URL",
            "SWITCHBOARD_LOG_JSON",
            "SWITCHBOARD_LOG_LEVEL",
            "SWITCHBOARD_RETRIEVAL_URL",
        )
    }
    | {"STREAMLIT_SERVER_PORT": "the chart's port is a value; compose uses Streamlit's own 8501"},
}
ONLY_IN_COMPOSE: dict[str, dict[str, str]] = {
    "chat": {
        "CHAT_OPENAI_COMPATIBLE_BASE_URL": "optional, passed through from the shell; the chart sets it in "
        "services.chat.env when wanted",
    },
    "retrieval": {"RETRIEVAL_DEMO_KB_DIR": "the demo knowledge base mounted for a local trial"},
    "integrations": {"INTEGRATIONS_DEMO_CRM_URL": "the demo CRM container of a local trial"},
    "analytics": {
        "ANALYTICS_POSTHOG_HOST": "optional, passed through from the shell; the chart sets it in "
        "services.analytics.env when wanted",
    },
}
CREDENTIAL = re.compile(r"(TOKEN|PASSWORD|SECRET|_KEY$|DATABASE_URL|REDIS_URL)")
HEALTHCHECK_URL = re.compile(r"urlopen\('([^']+)'")


@pytest.fixture(scope="module")
def compose_model(compose_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    completed = compose(
        compose_bin, example_env(tmp_path_factory.mktemp("compose")), "config", "--format", "json"
    )
    assert completed.returncode == 0, completed.stderr
    loaded: dict[str, Any] = json.loads(completed.stdout)
    return loaded


@pytest.fixture(scope="module")
def chart(rendered_sets: dict[str, Rendered]) -> Rendered:
    return rendered_sets["default"]


def deployment(chart: Rendered, service: str) -> dict[str, Any]:
    (found,) = [
        doc
        for doc in chart.docs
        if doc["kind"] == "Deployment"
        and doc["metadata"]["labels"].get("app.kubernetes.io/component") == service
    ]
    return found


def container(chart: Rendered, service: str) -> dict[str, Any]:
    spec = deployment(chart, service)["spec"]["template"]["spec"]
    (main,) = [c for c in spec["containers"] if c["name"] == service] or spec["containers"][:1]
    return dict(main)


def chart_env(chart: Rendered, service: str) -> dict[str, str | None]:
    """The container's settings: its own env (credentials from the Secret, valued None) and its ConfigMaps."""
    main = container(chart, service)
    env: dict[str, str | None] = {item["name"]: item.get("value") for item in main.get("env", [])}
    config_maps = {
        doc["metadata"]["name"]: doc.get("data", {}) for doc in chart.docs if doc["kind"] == "ConfigMap"
    }
    for source in main.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
    return env


def dockerfile_command(service: str) -> tuple[list[str], list[str] | None]:
    """The image's ENTRYPOINT and CMD (None when it has no CMD)."""
    text = (REPO / "services" / service / "Dockerfile").read_text()
    entrypoint = re.findall(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE)
    cmd = re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)
    return json.loads(entrypoint[-1]), json.loads(cmd[-1]) if cmd else None


def healthcheck_url(compose_model: dict[str, Any], service: str) -> str:
    test = " ".join(compose_model["services"][service]["healthcheck"]["test"])
    match = HEALTHCHECK_URL.search(test)
    assert match, f"{service}: no URL in the compose healthcheck {test!r}"
    return match[1]


@pytest.mark.parametrize("service", FLEET)
def test_both_run_the_images_entrypoint_with_its_arguments(
    chart: Rendered, compose_model: dict[str, Any], service: str
) -> None:
    main = container(chart, service)
    composed = compose_model["services"][service]
    _, cmd = dockerfile_command(service)
    # Neither replaces the entrypoint; the chart's arguments are the image's own CMD, which compose runs.
    assert main.get("command") is None and composed.get("entrypoint") is None
    assert composed.get("command") is None
    assert main.get("args") == cmd


@pytest.mark.parametrize("service", FLEET)
def test_both_serve_and_probe_the_same_port_and_readiness_path(
    chart: Rendered, compose_model: dict[str, Any], service: str
) -> None:
    main = container(chart, service)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    probe = main["readinessProbe"]["httpGet"]
    url = urlsplit(healthcheck_url(compose_model, service))
    assert probe["port"] == "http" and url.port == ports["http"]
    assert probe["path"] == url.path
    assert [p["target"] for p in compose_model["services"][service].get("ports", [])] in ([], [ports["http"]])
    _, cmd = dockerfile_command(service)
    if cmd is not None:
        assert cmd[cmd.index("--port") + 1] == str(ports["http"])


@pytest.mark.parametrize("service", FLEET)
def test_both_give_the_same_settings(chart: Rendered, compose_model: dict[str, Any], service: str) -> None:
    in_chart = chart_env(chart, service)
    in_compose: dict[str, str | None] = compose_model["services"][service]["environment"]
    assert set(in_chart) - set(in_compose) == set(ONLY_IN_CHART.get(service, {}))
    assert set(in_compose) - set(in_chart) == set(ONLY_IN_COMPOSE.get(service, {}))
    for key in sorted(set(in_chart) & set(in_compose)):
        chart_value, compose_value = in_chart[key], in_compose[key]
        if CREDENTIAL.search(key) or chart_value is None or compose_value is None:
            continue  # credentials differ by design (the Secret, generated ones); optional ones are unset
        if key.endswith("_URL"):
            # Same scheme, port and path; the host is the platform's own service name.
            a, b = urlsplit(chart_value), urlsplit(compose_value)
            assert (a.scheme, a.port, a.path) == (b.scheme, b.port, b.path), key
        else:
            assert chart_value == compose_value, key
