"""The Helm chart rendered by the real Helm v4 engine, for each value set in ``deploy/helm/switchboard/ci``.

Every manifest is validated against the Kubernetes OpenAPI schemas of two versions, then the checks a
schema cannot make: probes aim at real ports, HPAs at their Deployment, selectors at the right pods,
quantities parse, credentials stay out of ConfigMaps.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from tests.deploy.conftest import (
    CHART,
    DB_SERVICES,
    FLEET,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Rendered,
    load_value_set,
    render_docs,
    require_module,
)

QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
SECRET_LIKE = re.compile(r"(TOKEN|PASSWORD|SECRET|_KEY$|SALT|DATABASE_URL|REDIS_URL)")


def quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity as a number; fails on anything malformed."""
    match = QUANTITY.match(str(value))
    assert match, f"malformed quantity {value!r}"
    return Decimal(match["number"]) * SUFFIX[match["suffix"]]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def all_containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    return [doc for doc in rendered.docs if doc["kind"] in {"Deployment", "StatefulSet", "Job"}]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if isinstance(port, str):
        assert port in ports, f"{container['name']}: probe port {port!r} is not a declared port {ports}"
        return int(ports[port])
    assert port in ports.values(), f"{container['name']}: probe port {port} is not a container port"
    return port


# --- lint, schemas, install ---------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_strict_passes(helm: Any, value_set: str, kube_version: str) -> None:
    report = helm.lint(CHART, load_value_set(value_set), strict=True, kube_version=f"v{kube_version}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not report["errors"], report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(rendered: Rendered, kube_version: str) -> None:
    kubernetes_validate = require_module("kubernetes_validate")
    assert len(rendered.docs) > 20
    for doc in rendered.docs:
        # Raises ValidationError (or SchemaNotFoundError for an API the version lacks).
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_client_dry_run_install_succeeds(helm: Any) -> None:
    with helm.Config(storage_driver="memory", namespace=NAMESPACE) as config:
        release = config.install(CHART, RELEASE, load_value_set("default"), dry_run="client")
    assert release["name"] == RELEASE
    assert release["status"] == "pending-install"
    kinds = {
        doc.split("\nkind: ", 1)[1].split("\n", 1)[0]
        for doc in release["manifest"].split("---")
        if "\nkind: " in doc
    }
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds
    assert "Gateway:" in release["notes"]


def test_every_resource_lands_in_the_release_namespace(rendered: Rendered) -> None:
    for doc in rendered.docs:
        assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


# --- per service --------------------------------------------------------------------------------


@pytest.mark.parametrize("service", FLEET)
def test_probes_point_at_the_serving_port(rendered: Rendered, service: str) -> None:
    deployment = rendered.component("Deployment", service)
    (container,) = pod_spec(deployment)["containers"]
    expected_port = rendered.values["services"][service]["port"]
    assert [p["containerPort"] for p in container["ports"]] == [expected_port]
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = container[probe]["httpGet"]
        assert resolve_port(container, http_get["port"]) == expected_port
        paths[probe] = http_get["path"]
    if service == "console":
        assert paths == dict.fromkeys(paths, "/_stcore/health")
    else:
        assert paths["livenessProbe"] == "/healthz"
        assert paths["readinessProbe"] == "/readyz"
        assert container["args"] == ["--host", "0.0.0.0", "--port", str(expected_port)]


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for workload in workloads(rendered):
        for container in all_containers(workload):
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, (workload["metadata"]["name"], container["name"], resource)


def test_quantities_and_ports_are_well_formed(rendered: Rendered) -> None:
    for doc in rendered.docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            for container in all_containers(doc):
                for port in container.get("ports", []):
                    assert 1 <= port["containerPort"] <= 65535
                    assert (
                        re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", port["name"])
                        and len(port["name"]) <= 15
                    )
        if doc["kind"] == "StatefulSet":
            for claim in doc["spec"]["volumeClaimTemplates"]:
                assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
        if doc["kind"] == "Service":
            for port in doc["spec"]["ports"]:
                assert 1 <= port["port"] <= 65535


def test_pods_run_hardened(rendered: Rendered) -> None:
    service_accounts = {doc["metadata"]["name"] for doc in rendered.of_kind("ServiceAccount")}
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] in service_accounts, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["securityContext"]["runAsUser"] >= 10000, name
        for container in all_containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert not re.search(r":latest(@|$)", container["image"]), container["image"]
    for account in rendered.of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("service", FLEET)
def test_hpa_owns_the_replica_count_when_enabled(rendered: Rendered, service: str) -> None:
    settings = rendered.values["services"][service]["autoscaling"]
    deployment = rendered.component("Deployment", service)
    hpas = [
        h
        for h in rendered.of_kind("HorizontalPodAutoscaler")
        if h["metadata"]["name"] == deployment["metadata"]["name"]
    ]
    if not settings["enabled"]:
        assert hpas == []
        assert deployment["spec"]["replicas"] == rendered.values["services"][service]["replicas"]
        return
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert "replicas" not in deployment["spec"], "a fixed replica count fights the HPA"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    resources = {
        m["resource"]["name"]: m["resource"]["target"]
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Resource"
    }
    if settings["targetCPUUtilizationPercentage"]:
        assert resources["cpu"] == {
            "type": "Utilization",
            "averageUtilization": settings["targetCPUUtilizationPercentage"],
        }
    if settings.get("targetMemoryUtilizationPercentage"):
        assert resources["memory"]["averageUtilization"] == settings["targetMemoryUtilizationPercentage"]
    else:
        assert "memory" not in resources
    # Utilization targets are a share of the requests, so every container must request what is watched.
    for container in all_containers(deployment):
        for name in resources:
            assert name in container["resources"]["requests"]


def test_autoscaling_watches_cpu_by_default_and_takes_custom_metrics(
    rendered_sets: dict[str, Rendered],
) -> None:
    default_hpa = rendered_sets["default"].component("HorizontalPodAutoscaler", "gateway")
    assert [m["resource"]["name"] for m in default_hpa["spec"]["metrics"]] == ["cpu"]
    production_hpa = rendered_sets["production"].component("HorizontalPodAutoscaler", "gateway")
    types = [m["type"] for m in production_hpa["spec"]["metrics"]]
    assert types == ["Resource", "Resource", "Pods"]
    assert production_hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert rendered_sets["autoscaling-off"].of_kind("HorizontalPodAutoscaler") == []


@pytest.mark.parametrize("service", FLEET)
def test_pdb_and_service_select_exactly_that_services_pods(rendered: Rendered, service: str) -> None:
    deployment = rendered.component("Deployment", service)
    labels = pod_labels(deployment)
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    others = [w for w in workloads(rendered) if w is not deployment]

    svc = rendered.component("Service", service)
    assert selects(svc["spec"]["selector"], labels)
    assert not any(selects(svc["spec"]["selector"], pod_labels(w)) for w in others)
    (container,) = pod_spec(deployment)["containers"]
    for port in svc["spec"]["ports"]:
        assert resolve_port(container, port["targetPort"]) == rendered.values["services"][service]["port"]

    if rendered.values["services"][service]["pdb"]["enabled"]:
        pdb = rendered.component("PodDisruptionBudget", service)
        assert pdb["apiVersion"] == "policy/v1"
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert selects(selector, labels)
        assert not any(selects(selector, pod_labels(w)) for w in others)
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])
    else:
        assert not [
            p
            for p in rendered.of_kind("PodDisruptionBudget")
            if p["metadata"]["name"] == deployment["metadata"]["name"]
        ]


@pytest.mark.parametrize("service", FLEET)
def test_service_env_carries_only_its_own_credentials(rendered: Rendered, service: str) -> None:
    deployment = rendered.component("Deployment", service)
    (container,) = pod_spec(deployment)["containers"]
    secret_keys = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e
    }
    database_keys = {k for k in secret_keys if k.endswith("_DATABASE_URL")}
    if service == "console":
        assert database_keys == set()
        assert "SWITCHBOARD_INTERNAL_TOKEN" not in secret_keys
    else:
        assert database_keys == {f"{service.upper()}_DATABASE_URL"}
        assert secret_keys["SWITCHBOARD_INTERNAL_TOKEN"].get("optional") is None
    for key in secret_keys:
        assert key.startswith((f"{service.upper()}_", "SWITCHBOARD_")), key
    expected_secret = rendered.values["secrets"]["existingSecret"] or f"{RELEASE}-switchboard"
    assert {ref["name"] for ref in secret_keys.values()} <= {expected_secret}
    (config_ref,) = container["envFrom"]
    config = rendered.named("ConfigMap", config_ref["configMapRef"]["name"])
    assert config["data"]["SWITCHBOARD_ENVIRONMENT"] == rendered.values["environment"]


def test_configmaps_hold_no_credentials(rendered: Rendered) -> None:
    for config in rendered.of_kind("ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRET_LIKE.search(key), (config["metadata"]["name"], key)


def test_services_find_each_other_and_chroma(rendered: Rendered) -> None:
    service_ports = {
        s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in rendered.of_kind("Service")
    }
    data = rendered.component("ConfigMap", "chat")["data"]
    for service in DB_SERVICES:
        url = data[f"SWITCHBOARD_{service.upper()}_URL"]
        host, port = url.removeprefix("http://").split(":")
        assert service_ports[host] == int(port)
    chroma_url = rendered.component("ConfigMap", "retrieval")["data"]["RETRIEVAL_CHROMA_URL"]
    if rendered.values["chroma"]["enabled"]:
        host, port = chroma_url.removeprefix("http://").split(":")
        assert service_ports[host] == int(port)
        assert rendered.component("StatefulSet", "chroma")["spec"]["volumeClaimTemplates"]
    else:
        assert chroma_url == rendered.values["chroma"]["url"]
        assert not [s for s in rendered.of_kind("StatefulSet") if s["metadata"]["name"].endswith("-chroma")]


# --- exposure -----------------------------------------------------------------------------------


def test_only_gateway_and_console_are_reachable_from_outside(rendered: Rendered) -> None:
    policies = rendered.of_kind("NetworkPolicy")
    default_deny = rendered.component("NetworkPolicy", "default-deny")
    assert default_deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in default_deny["spec"]
    fleet_selector = {
        "app.kubernetes.io/name": "switchboard",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/part-of": "switchboard",
    }
    external_from = rendered.values["networkPolicy"]["externalFrom"]
    for workload in workloads(rendered):
        labels = pod_labels(workload)
        assert selects(default_deny["spec"]["podSelector"]["matchLabels"], labels)
        if workload["kind"] == "Job":
            continue
        component = labels["app.kubernetes.io/component"]
        (policy,) = [
            p
            for p in policies
            if p is not default_deny and selects(p["spec"]["podSelector"]["matchLabels"], labels)
        ]
        (rule,) = policy["spec"]["ingress"]
        if component in {"gateway", "console"}:
            assert rule.get("from", []) == external_from
        else:
            sources = rule["from"]
            assert sources[0] == {"podSelector": {"matchLabels": fleet_selector}}
            assert sources[1:] == rendered.values["networkPolicy"]["metricsFrom"]


def test_ingress_routes_only_to_gateway_and_console(rendered: Rendered) -> None:
    ingresses = rendered.of_kind("Ingress")
    if not rendered.values["ingress"]["enabled"]:
        assert ingresses == []
        return
    (ingress,) = ingresses
    backends = {
        rule["host"]: path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends[rendered.values["ingress"]["gateway"]["host"]]["name"] == f"{RELEASE}-switchboard-gateway"
    for backend in backends.values():
        assert backend["name"] in {f"{RELEASE}-switchboard-gateway", f"{RELEASE}-switchboard-console"}
        service = rendered.named("Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


# --- credentials and migrations -----------------------------------------------------------------


def test_secret_rendering_follows_existing_secret(rendered: Rendered) -> None:
    secrets = {s["metadata"]["name"]: s for s in rendered.of_kind("Secret")}
    existing = rendered.values["secrets"]["existingSecret"]
    if existing:
        assert secrets == {}
        return
    data = secrets[f"{RELEASE}-switchboard"]["stringData"]
    for service in DB_SERVICES:
        assert data[f"{service.upper()}_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert data["SWITCHBOARD_REDIS_URL"].startswith("redis://")


def test_migrations_run_as_hooks_with_external_postgres(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["default"]
    jobs = {job["metadata"]["name"]: job for job in rendered.of_kind("Job")}
    assert set(jobs) == {f"{RELEASE}-switchboard-migrate-{service}" for service in DB_SERVICES}
    hook_secret = rendered.component("Secret", "migrations")
    hook_account = rendered.component("ServiceAccount", "migrations")
    for hooked in (hook_secret, hook_account, *jobs.values()):
        assert hooked["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        next(iter(jobs.values()))["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    for service in DB_SERVICES:
        (container,) = pod_spec(jobs[f"{RELEASE}-switchboard-migrate-{service}"])["containers"]
        assert container["command"] == ["python", "-m", "switchboard_shared.migrate"]
        assert container["args"][0] == service
        assert container["image"].rsplit("/", 1)[1].startswith(f"{service}:")
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
        }
        assert refs[f"{service.upper()}_DATABASE_URL"] == hook_secret["metadata"]["name"]
        deployment = rendered.component("Deployment", service)
        assert "initContainers" not in pod_spec(deployment)
        config = rendered.component("ConfigMap", service)["data"]
        assert config[f"{service.upper()}_AUTO_MIGRATE"] == "false"
    production_jobs = rendered_sets["production"].of_kind("Job")
    for job in production_jobs:
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in pod_spec(job)["containers"][0]["env"]
            if "valueFrom" in e
        }
        assert refs == {"switchboard-credentials"}


def test_bundled_backing_services_migrate_in_init_containers(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["bundled"]
    assert rendered.of_kind("Job") == []
    data = rendered.named("Secret", f"{RELEASE}-switchboard")["stringData"]
    postgres_host = f"{RELEASE}-switchboard-postgresql"
    for service in DB_SERVICES:
        assert data[f"{service.upper()}_DATABASE_URL"] == (
            f"postgresql+asyncpg://switchboard:trial-pg-password@{postgres_host}:5432/{service}"
        )
        (init,) = pod_spec(rendered.component("Deployment", service))["initContainers"]
        assert init["command"] == ["python", "-m", "switchboard_shared.migrate"]
        assert init["args"][0] == service
    assert (
        data["SWITCHBOARD_REDIS_URL"] == f"redis://:trial-redis-password@{RELEASE}-switchboard-redis:6379/0"
    )
    init_sql = rendered.component("ConfigMap", "postgresql")["data"]["10-databases.sql"]
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", init_sql)) == sorted(DB_SERVICES)
    postgres = rendered.component("StatefulSet", "postgresql")
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert rendered.component("Deployment", "redis")


def test_rendering_without_credentials_names_what_is_missing(helm: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"secrets\.values\.SWITCHBOARD_INTERNAL_TOKEN is required"):
        render_docs(helm, {})


def test_hpa_min_above_max_is_refused(helm: Any) -> None:
    values = load_value_set("default")
    values["services"] = {"chat": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}}
    with pytest.raises(
        helm.HelmError, match=r"services\.chat\.autoscaling\.minReplicas \(5\) must not exceed"
    ):
        render_docs(helm, values)


def test_chroma_disabled_needs_an_external_url(helm: Any) -> None:
    values = load_value_set("default")
    values["chroma"] = {"enabled": False}
    with pytest.raises(helm.HelmError, match=r"chroma\.url is required"):
        render_docs(helm, values)


def test_retrieval_uploads_can_live_on_a_shared_claim(rendered_sets: dict[str, Rendered]) -> None:
    production = pod_spec(rendered_sets["production"].component("Deployment", "retrieval"))
    volumes = {v["name"]: v for v in production["volumes"]}
    assert volumes["uploads"]["persistentVolumeClaim"] == {"claimName": "switchboard-uploads"}
    mounts = {m["name"]: m["mountPath"] for m in production["containers"][0]["volumeMounts"]}
    assert mounts["uploads"] == "/data/uploads"
    default = pod_spec(rendered_sets["default"].component("Deployment", "retrieval"))
    assert "uploads" not in {v["name"] for v in default["volumes"]}
