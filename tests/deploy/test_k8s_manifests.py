"""deploy/k8s: every manifest valid against the Kubernetes OpenAPI schemas (offline,
strict: unknown fields fail), and the parts that must agree do."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest minor version the manifests promise to work on (autoscaling/v2 is GA
# since 1.23; 1.30 is a conservative floor for clusters still in support).
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text())


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(manifest: Path) -> None:
    for resource in yaml.safe_load_all(manifest.read_text()):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    deployment = _load("deployment.yaml")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = _load("kustomization.yaml")["resources"]
    assert sorted(listed) == [p.name for p in MANIFESTS]


def test_probes_resources_and_security() -> None:
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the USER of deploy/Dockerfile
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "MLFLOW_TRACKING_URI"
    assert pod["terminationGracePeriodSeconds"] > 30  # the server's graceful shutdown


def test_hpa_scales_the_deployment() -> None:
    hpa = _load("hpa.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == _load("deployment.yaml")["metadata"]["name"]


def test_configmap_agrees_with_the_spec_it_holds() -> None:
    data = _load("configmap.yaml")["data"]
    spec = yaml.safe_load(data["deploy.yaml"])
    environment = spec["environments"][data["ENVIRONMENT"]]
    assert data["MODEL_NAME"] == spec["model"]
    assert data["MODEL_ALIAS"] == environment["alias"]
    assert int(data["MAX_BATCH_SIZE"]) == spec["serve"]["max_batch_size"]
    assert float(data["MAX_DELAY_MS"]) == spec["serve"]["max_delay_ms"]
    deployment = _load("deployment.yaml")
    assert deployment["spec"]["replicas"] == environment["replicas"]
    assert _load("hpa.yaml")["spec"]["minReplicas"] == environment["replicas"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == spec["resources"]
    # The same model's spec under deploy/models/ (written by `modelyard deploy`'s
    # side) is the source; the ConfigMap carries a copy of it.
    source = ROOT / "deploy" / "models" / f"{spec['model']}.yaml"
    if source.exists():
        assert yaml.safe_load(source.read_text()) == spec


MEASURED = ROOT / "benchmarks" / "deploy" / "results"


def _quantity_mib(value: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value) / 2**20


def test_probes_and_memory_fit_the_measured_server() -> None:
    """The Deployment against benchmarks/deploy's measured ready times and RSS (the
    slowest start and the largest worker of every recorded run, busy core included)."""
    cases = [
        figures
        for path in sorted(MEASURED.glob("ready-*.json"))
        for name, figures in json.loads(path.read_text())["summary"].items()
        if not name.startswith("before")  # the code before the light registry client
    ]
    assert cases, f"no measurements in {MEASURED}"
    slowest = max(case["ready_s"]["max"] for case in cases)
    largest_mib = max(case["rss_after_mb"]["max"] for case in cases)
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    startup = container["startupProbe"]
    # Readiness and liveness wait for the startup probe; its budget covers a cold node
    # (fetching the bundle) many times over the measured start.
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * slowest
    # No probe may give up on a healthy server answering a little late.
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["timeoutSeconds"] >= 1 and container[probe]["failureThreshold"] >= 2
    memory = container["resources"]
    assert _quantity_mib(memory["requests"]["memory"]) >= 1.5 * largest_mib
    assert _quantity_mib(memory["limits"]["memory"]) >= 2 * largest_mib
    # A read-only root: everything the server writes (the bundle cache and the
    # prediction log under MODELYARD_HOME, temporary files) is a mounted volume.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/home/modelyard", "/tmp"} <= mounts


CONTAINER = MEASURED / "ready-container.json"
"""Written by every full ``make e2e`` run (tests/e2e/conftest.py): the server image
itself, started with ``docker run`` from a bundle folder and from a registry alias."""


def test_deployment_fits_the_container_that_make_e2e_measured() -> None:
    """The pod's probes, memory and grace period against the image as it ran: the
    startup probe gives the server far longer than its measured start before the
    kubelet restarts it (and readiness and liveness wait for it), the memory request
    and limit leave room above the measured resident set, and the grace period covers
    the measured graceful stop (log flush included) with the server's own 30 s."""
    measured = json.loads(CONTAINER.read_text())
    cases = measured["summary"]
    assert set(cases) == {"container-bundle-folder", "container-registry-alias"}, cases
    ready_s = max(case["ready_s"]["max"] for case in cases.values())
    rss_mib = max(case["rss_after_mb"]["max"] for case in cases.values()) * 1e6 / 2**20
    stop_s = max(case["stop_s"]["max"] for case in cases.values())
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    startup = container["startupProbe"]
    budget = startup.get("initialDelaySeconds", 0)
    budget += startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 20 * ready_s, f"startup budget {budget} s vs ready in {ready_s} s"
    for name in ("readinessProbe", "livenessProbe"):
        # Gated by the startup probe, so no delay of their own is needed; a slow
        # answer from a ready server must still not count as a failure at once.
        probe = container[name]
        assert probe.get("initialDelaySeconds", 0) == 0 and probe["failureThreshold"] >= 2
        assert probe["timeoutSeconds"] >= 1, name

    memory = container["resources"]
    assert _quantity_mib(memory["requests"]["memory"]) >= 1.5 * rss_mib
    assert _quantity_mib(memory["limits"]["memory"]) >= 2 * rss_mib
    assert pod["terminationGracePeriodSeconds"] >= 30 + 10 * stop_s
    assert measured["image_bytes"] <= 250 * 10**6, "the image measured was above 250 MB"
