"""deploy/kubernetes renders with kustomize and passes kubernetes-validate (strict).

Rendering uses `kubectl kustomize` (skipped with the reason when kubectl is missing);
validation uses the kubernetes-validate package (a dev dependency).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl to render the kustomization")
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(K8S)


def test_rendered_manifests_pass_kubernetes_validate_strict(docs: list[dict[str, Any]]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error


def test_deployments_replicas_and_autoscaler(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"vigil-ingest", "vigil-alerter", "vigil-notifier", "vigil-web"}
    assert deployments["vigil-alerter"]["spec"]["replicas"] == 2
    assert deployments["vigil-notifier"]["spec"]["replicas"] == 2
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["vigil-ingest"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vigil-ingest"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert by_kind(docs, "Service")["vigil-web"]["spec"]["ports"][0]["port"] == 9090
    assert all(d["metadata"].get("namespace") == "vigil" for d in docs if d["kind"] != "Namespace")


def test_every_service_runs_non_root_with_its_own_creds(docs: list[dict[str, Any]]) -> None:
    for name, dep in by_kind(docs, "Deployment").items():
        service = name.removeprefix("vigil-")
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        [container] = pod["containers"]
        assert container["command"] == [name]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        creds = next(v for v in pod["volumes"] if v["name"] == "nats-creds")
        assert creds["secret"]["items"] == [{"key": f"{service}.creds", "path": "nats.creds"}]
        config = next(v for v in pod["volumes"] if v["name"] == "config")
        assert config["configMap"]["name"].startswith("vigil-config-")  # generated, hashed


def test_keda_overlay_replaces_the_cpu_autoscaler_with_a_jetstream_lag_scaler() -> None:
    docs = render(K8S / "keda")
    assert by_kind(docs, "HorizontalPodAutoscaler") == {}
    scaled = by_kind(docs, "ScaledObject")["vigil-ingest"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == "VIGIL_METRICS"
    assert trigger["metadata"]["consumer"] == "ingest"
