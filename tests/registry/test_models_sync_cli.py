"""``slmctl models sync`` as a user runs it: a subprocess, the real ``DefaultAzureCredential`` chain
(restricted to the Azure CLI credential, answered by a local ``az``), Azurite over HTTPS, and a
Hub-shaped server as ``HF_ENDPOINT``. The dev stack's pinned Phi-4-mini revision is what it mirrors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.registry.supply import MANIFEST_NAME, Manifest, artifact_prefix
from slmctl.loader import load_stack_file
from stacks.settings import EnvironmentSettings
from tests.registry.supply_support import (
    LFS_FILES,
    REPO_ROOT,
    Azurite,
    FakeHub,
    cli_credential_env,
    tiny_repo,
    write_fake_az,
)

DEV = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml", stack="dev").settings


def _phi(settings: EnvironmentSettings) -> tuple[str, str]:
    artifact = settings.models["phi-4-mini"].artifacts.safetensors
    assert artifact is not None
    return artifact.repo, artifact.revision


REPO, REV = _phi(DEV)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite-cli")) as emulator:
        yield emulator


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(repo=REPO, revision=REV, files=tiny_repo(), lfs=LFS_FILES) as server:
        yield server


def run_sync(azurite: Azurite, hub: FakeHub, tmp_path: Path, *args: str,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert azurite.cert is not None
    env = cli_credential_env(write_fake_az(tmp_path / "bin"), azurite.cert)
    env |= {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "slmctl", "models", "sync", *args,
                           "--account-url", azurite.account_url, "--workdir", str(tmp_path)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_sync_dev_mirrors_then_reruns_without_copying(azurite: Azurite, hub: FakeHub, tmp_path: Path) -> None:
    container = azurite.container("phi4-mini")
    first = run_sync(azurite, hub, tmp_path, "dev")
    assert first.returncode == 0, first.stderr
    assert "5 copied" in first.stdout
    manifest = Manifest.from_json(container.get_blob_client(
        artifact_prefix("phi-4-mini", REV) + MANIFEST_NAME).download_blob().readall())
    assert {f.path for f in manifest.files} == {p for p in tiny_repo() if "/" not in p and not p.endswith(".bin")}
    hub.downloads.clear()
    second = run_sync(azurite, hub, tmp_path, "dev")
    assert second.returncode == 0, second.stderr
    assert "0 copied (0.0 MB), 5 already verified" in second.stdout
    assert hub.downloads == []


def test_a_changed_upstream_file_exits_3_with_one_line(azurite: Azurite, hub: FakeHub, tmp_path: Path) -> None:
    azurite.container("phi4-mini")
    name = "model-00002-of-00002.safetensors"
    hub.tampered[name] = b"\x01" * len(tiny_repo()[name])
    # A fresh revision prefix so earlier tests' verified blobs are not reused.
    result = run_sync(azurite, hub, tmp_path, "--stack-file", str(_stack_with_revision(tmp_path, hub)))
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert "refused" in errors[0]
    assert name in errors[0]
    assert "Traceback" not in result.stderr


def _stack_with_revision(tmp_path: Path, hub: FakeHub) -> Path:
    text = (REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    new_rev = "f" * 40
    hub.revision = new_rev
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text.replace(REV, new_rev), encoding="utf-8")
    return path


def test_a_gated_model_without_a_token_is_bad_input(azurite: Azurite, hub: FakeHub, tmp_path: Path) -> None:
    result = run_sync(azurite, hub, tmp_path, "prod", "--model", "gemma-3-4b")
    assert result.returncode == 2
    assert "models.gemma-3-4b.gated" in result.stderr
    assert "HF_TOKEN" in result.stderr


def test_the_local_tier_has_no_registry(azurite: Azurite, hub: FakeHub, tmp_path: Path) -> None:
    result = run_sync(azurite, hub, tmp_path, "local")
    assert result.returncode == 2
    assert "no ModelRegistry" in result.stderr


def test_targets_create_the_weights_storage_and_its_dependencies_but_no_workload() -> None:
    result = subprocess.run([sys.executable, "-m", "slmctl", "models", "targets", "prod"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    urns = result.stdout.split()
    kinds = {urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1] for urn in urns}
    assert {"azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer",
            "azure-native:resources:ResourceGroup", "azure-native:network:PrivateEndpoint"} <= kinds
    assert any(urn.endswith("::models-weights-ra-deployer-weights") for urn in urns)
    assert not [k for k in kinds if k.startswith("kubernetes:") or k.endswith("ManagedCluster")]


def _edge_stack(tmp_path: Path, manifest_sha256: str | None = None) -> Path:
    """dev with weights from the registry and an IoT Edge fleet serving the (tiny) ONNX variant."""
    import yaml

    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    settings = doc["config"]["slm-platform:settings"]
    settings.setdefault("registry", {})["weights_source"] = "registry"
    settings["models"]["phi-4-mini"]["artifacts"]["onnx"] = {"repo": REPO, "revision": REV, "cpu_variant": "cpu/cpu-int4",
                                                             **({"manifest_sha256": manifest_sha256}
                                                                if manifest_sha256 else {})}
    settings["edge"] = {
        "device_classes": {"gw": {"architecture": "amd64", "memory_gib": 16, "cpus": 8}},
        "fleets": {"plant": {"device_class": "gw", "model": "phi-4-mini", "delivery": "iot-edge",
                             "engine": "onnx-genai", "device_selector": {"site": "plant-3"}}}}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_sync_publishes_what_an_edge_fleet_loads_and_a_device_fills_from_it(
        azurite: Azurite, hub: FakeHub, tmp_path: Path) -> None:
    from tests.registry.oci_support import PASSWORD, USERNAME, DistributionRegistry

    azurite.container("phi4-mini")
    (tmp_path / "registry").mkdir()
    assert azurite.cert is not None
    with DistributionRegistry(tmp_path / "registry", cert=azurite.cert, key=azurite.cert.parent / "key.pem") as registry:
        assert registry.cert is not None
        bundle = azurite.cert
        creds = {"SLM_REGISTRY_USERNAME": USERNAME, "SLM_REGISTRY_PASSWORD": PASSWORD}
        result = run_sync(azurite, hub, tmp_path, "--stack-file", str(_edge_stack(tmp_path)), "--model",
                          "phi-4-mini", "--registry-server", registry.login_server,
                          extra_env={**creds, "REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle)})
        assert result.returncode == 0, result.stderr
        published = [line for line in result.stdout.splitlines() if "/models/phi-4-mini:" in line]
        assert published == [line for line in published if "3 pushed" in line]
        assert len(published) == 1
        pin = published[0].rsplit(" ", 1)[-1]
        dest = tmp_path / "device"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AZURE_"))}
        fill = subprocess.run(
            [sys.executable, str(REPO_ROOT / "components" / "registry" / "fill" / "entrypoint.py"), "--registry",
             registry.login_server, "--model", "phi-4-mini", "--revision", REV, "--dest", str(dest), "--include",
             "cpu/cpu-int4/*", "--offline-ok", "--manifest-sha256", pin],
            env={**env, **creds, "REQUESTS_CA_BUNDLE": str(registry.cert), "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True, text=True, timeout=300, check=False)
        assert fill.returncode == 0, fill.stderr
        assert (dest / "cpu/cpu-int4/model.onnx").read_bytes() == tiny_repo()["cpu/cpu-int4/model.onnx"]
        env_all = {**creds, "REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle)}
        args = ("--model", "phi-4-mini", "--registry-server", registry.login_server)
        pinned = run_sync(azurite, hub, tmp_path, "--stack-file", str(_edge_stack(tmp_path, pin)), *args,
                          extra_env=env_all)
        assert pinned.returncode == 0, pinned.stderr
        assert "0 pushed" in pinned.stdout
        stale = run_sync(azurite, hub, tmp_path, "--stack-file", str(_edge_stack(tmp_path, "0" * 64)), *args,
                         extra_env=env_all)
        assert stale.returncode == 3
        errors = [line for line in stale.stderr.splitlines() if line.startswith("error")]
        assert len(errors) == 1
        assert "models.phi-4-mini.artifacts.onnx.manifest_sha256" in errors[0]
        assert pin in errors[0]


def test_targets_of_a_stack_with_an_edge_fleet_also_create_the_registry_and_the_deployers_push() -> None:
    result = subprocess.run([sys.executable, "-m", "slmctl", "models", "targets", "prod"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    urns = result.stdout.split()
    assert any(urn.endswith("$azure-native:containerregistry:Registry::models-acr") for urn in urns)
    assert any(urn.endswith("::models-acr-ra-deployer-push") for urn in urns)
    assert any(urn.endswith("::models-acr-pe") for urn in urns)
    assert not [u for u in urns if "ManagedCluster" in u or "EdgeDevice" in u or "$kubernetes:" in u]
    # The fill image (in the step so its digest is known at the full up's preview) waits for the ACR's
    # grants, the kubelet's AcrPull among them: an ARM grant to a user-assigned identity, no cluster.
    assert any(urn.endswith("$docker:index/image:Image::models-model-fill") for urn in urns)
    assert [u.rsplit("::", 1)[1] for u in urns if "kubelet" in u] == ["env-id-aks-kubelet", "models-acr-ra-kubelet-acrpull"]
