"""Rendered manifests: valid against the Kubernetes API schemas, CRDs structurally sound, no secrets, Checkov clean."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from slmctl.recorder import Recording
from slmctl.render_k8s import api_version_and_kind, render_kubernetes, schema_version
from tests.inference.builders import build, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = REPO_ROOT / ".checkov-venv" / "bin" / "checkov"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "SecretProviderClass"}
BUNDLED = sorted(set(kv_utils.all_versions()), key=lambda v: tuple(int(p) for p in v.split(".")))


@pytest.fixture(scope="module", params=["dev", "prod", "local"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Path]]:
    recording: Recording = request.getfixturevalue(f"{request.param}_recording")
    out = tmp_path_factory.mktemp(f"k8s-{request.param}")
    return request.param, render_kubernetes(recording, out)


def docs(paths: list[Path]) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in paths]


def test_bundled_schemas_cover_the_default_cluster_version() -> None:
    version = make_settings("dev").cluster.kubernetes_version
    assert schema_version(version, BUNDLED) == f"{version}.0"


def test_unbundled_versions_fall_back_to_the_nearest_bundled_minor() -> None:
    assert schema_version("1.24", ["1.25.0", "1.33.0", "1.37.0"]) == "1.25.0"
    assert schema_version("1.40", ["1.25.0", "1.33.0", "1.37.0"]) == "1.37.0"
    assert schema_version("1.34.2", ["1.33.0", "1.35.0"]) == "1.35.0"


def test_type_tokens_map_to_api_version_and_kind() -> None:
    assert api_version_and_kind("kubernetes:core/v1:Namespace") == ("v1", "Namespace")
    assert api_version_and_kind("kubernetes:networking.k8s.io/v1:Ingress") == ("networking.k8s.io/v1", "Ingress")


def test_every_builtin_object_passes_strict_schema_validation(rendered: tuple[str, list[Path]]) -> None:
    tier, paths = rendered
    version = schema_version(make_settings(tier).cluster.kubernetes_version, BUNDLED)
    checked = 0
    for doc in docs(paths):
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 20


def test_crds_are_structurally_sound(rendered: tuple[str, list[Path]]) -> None:
    """kubernetes-validate has no schemas for KEDA or the CSI driver: check what they require ourselves."""
    _, paths = rendered
    for doc in docs(paths):
        if doc["kind"] == "ScaledObject":
            assert doc["apiVersion"] == "keda.sh/v1alpha1"
            spec = doc["spec"]
            assert spec["scaleTargetRef"]["name"] == doc["metadata"]["name"]
            assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
            assert spec["triggers"]
            for trigger in spec["triggers"]:
                assert trigger["type"] in {"prometheus", "cpu", "cron"}
                assert all(isinstance(v, str) for v in trigger["metadata"].values())
                if trigger["type"] == "prometheus":
                    assert {"serverAddress", "query", "threshold"} <= set(trigger["metadata"])
        elif doc["kind"] == "SecretProviderClass":
            assert doc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
            assert doc["spec"]["provider"] == "azure"
            assert all(isinstance(v, str) for v in doc["spec"]["parameters"].values())
            assert "objectName:" in doc["spec"]["parameters"]["objects"]


def test_secret_values_never_reach_disk(tmp_path: Path) -> None:
    paths = render_kubernetes(build(make_settings("local")), tmp_path)
    secrets = [d for d in docs(paths) if d["kind"] == "Secret"]
    assert secrets
    assert all(d["stringData"] == {"api-key": "[secret]"} for d in secrets)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and "local-test-key" in p.read_text()]


def test_helm_releases_render_as_values_files(tmp_path: Path) -> None:
    paths = render_kubernetes(build(make_settings("dev", cluster={"gpu_driver": "gpu-operator"})), tmp_path)
    values = tmp_path / "_helm" / "gpu-operator.values.yaml"
    assert values.is_file()
    assert yaml.safe_load(values.read_text())["driver"]["enabled"] is True
    assert not [p for p in paths if "_helm" in p.parts]


@pytest.mark.slow
def test_checkov_finds_no_failed_checks_and_every_skip_has_a_reason(rendered: tuple[str, list[Path]]) -> None:
    if not CHECKOV.exists():
        pytest.skip("Checkov venv absent: run scripts/checkov.sh --install-only (make test creates it)")
    _, paths = rendered
    directory = paths[0].parents[1]
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run([str(REPO_ROOT / "scripts" / "checkov.sh"), str(directory)],
                            capture_output=True, text=True, env=env, check=False)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 100
    skips = [value for doc in docs(paths) for key, value in (doc["metadata"].get("annotations") or {}).items()
             if key.startswith("checkov.io/skip")]
    assert all(len(skip.split("=", 1)[1]) > 20 for skip in skips)
    assert sum(r["summary"]["skipped"] for r in reports) == len(skips)
