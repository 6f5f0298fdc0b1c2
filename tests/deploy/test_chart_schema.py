"""``values.schema.json`` refuses bad values before anything renders: one case per rule.

Each case overrides the valid default value set with one bad value and expects Helm's render (what
``helm install`` runs) to fail with a message that points at the offending key.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.conftest import CHART, RELEASE, load_value_set


def with_override(path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(load_value_set("default"))
    node = values
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return values


BAD_VALUES = [
    pytest.param("environment", "staging", "/environment", id="environment-enum"),
    pytest.param("logLevel", "verbose", "/logLevel", id="log-level-enum"),
    pytest.param("image.pullPolicy", "Sometimes", "/image/pullPolicy", id="pull-policy-enum"),
    pytest.param("image.tag", "latest", "/image/tag", id="image-tag-not-latest"),
    pytest.param("image.digests.gateway", "sha256:abc", "/image/digests/gateway", id="digest-format"),
    pytest.param(
        "image.digests.billing", "sha256:" + "a" * 64, "/image/digests", id="digest-unknown-service"
    ),
    pytest.param("services.chat.port", 70000, "/services/chat/port", id="port-range"),
    pytest.param("services.chat.port", "8001", "/services/chat/port", id="port-type"),
    pytest.param("services.billing", {"port": 9000}, "/services", id="unknown-service"),
    pytest.param("services.chat.replicas", -1, "/services/chat/replicas", id="replicas-non-negative"),
    pytest.param(
        "services.chat.autoscaling.minReplicas",
        0,
        "/services/chat/autoscaling/minReplicas",
        id="hpa-min-at-least-one",
    ),
    pytest.param(
        "services.chat.autoscaling.targetCPUUtilizationPercentage",
        150,
        "/services/chat/autoscaling/targetCPUUtilizationPercentage",
        id="cpu-target-percent",
    ),
    pytest.param(
        "services.chat.autoscaling.customMetrics",
        [{"type": "Magic"}],
        "/services/chat/autoscaling/customMetrics/0/type",
        id="custom-metric-type",
    ),
    pytest.param(
        "services.chat.pdb",
        {"enabled": True, "minAvailable": 1, "maxUnavailable": 1},
        "/services/chat/pdb",
        id="pdb-one-of-min-or-max",
    ),
    pytest.param(
        "services.chat.pdb.maxUnavailable",
        "half",
        "/services/chat/pdb/maxUnavailable",
        id="pdb-int-or-percent",
    ),
    pytest.param(
        "services.chat.resources.limits.cpu", "two", "/services/chat/resources/limits/cpu", id="cpu-quantity"
    ),
    pytest.param(
        "services.chat.resources.requests.memory",
        "512MB",
        "/services/chat/resources/requests/memory",
        id="memory-quantity",
    ),
    pytest.param(
        # null deletes the default during Helm's coalescing, leaving requests without memory.
        "services.chat.resources.requests.memory",
        None,
        "/services/chat/resources/requests",
        id="requests-complete",
    ),
    pytest.param("services.chat.env", {"bad-name": "x"}, "propertyName 'bad-name'", id="env-name"),
    pytest.param(
        "services.chat.secretKeys", ["openai key"], "/services/chat/secretKeys/0", id="secret-key-name"
    ),
    pytest.param(
        "secrets.values", {"SWITCHBOARD_INTERNAL_TOKEN": 42}, "/secrets/values", id="secret-value-string"
    ),
    pytest.param("podSecurityContext.runAsNonRoot", False, "/podSecurityContext/runAsNonRoot", id="non-root"),
    pytest.param(
        "securityContext.allowPrivilegeEscalation",
        True,
        "/securityContext/allowPrivilegeEscalation",
        id="no-escalation",
    ),
    pytest.param("ingress.gateway.host", "Not A Host", "/ingress/gateway/host", id="ingress-hostname"),
    pytest.param("chroma.url", "chroma:8000", "/chroma/url", id="chroma-url-scheme"),
    pytest.param("chroma.persistence.size", "10GB", "/chroma/persistence/size", id="pvc-size"),
    pytest.param(
        "retrievalUploads.existingClaim", "Uploads_Claim", "/retrievalUploads/existingClaim", id="claim-name"
    ),
    pytest.param("postgresql.username", "Switch-Board", "/postgresql/username", id="postgres-username"),
    pytest.param("redis.bundled", "yes", "/redis/bundled", id="bundled-boolean"),
    pytest.param("replicaCount", 3, "(root)", id="unknown-top-level-key"),
]


@pytest.mark.parametrize(("path", "value", "pointer"), BAD_VALUES)
def test_schema_rejects(helm: Any, path: str, value: Any, pointer: str) -> None:
    values = with_override(path, value)
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name=RELEASE)
    message = str(caught.value)
    assert "schema" in message
    if pointer.startswith("/"):
        assert f"'{pointer}" in message, message
    elif pointer == "(root)":
        assert "replicaCount" in message, message
    else:
        assert pointer in message, message


def test_schema_accepts_every_shipped_value_set(helm: Any) -> None:
    with helm.Chart.load(CHART) as chart:
        for name in ("default", "production", "autoscaling-off", "bundled"):
            chart.validate_schema(load_value_set(name))
