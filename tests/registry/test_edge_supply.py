"""The edge model path end to end: Hub-shaped upstream -> Azurite -> a real OCI registry -> a device volume.

The mirror syncs the pinned ONNX variant into blob storage (as for AKS), then publishes that verified
copy to the registry as an OCI artifact; the device-side fill step (the same ``fill_from`` and
entrypoint AKS pods run) pulls every layer by digest with the fleet's pull-only token and verifies
it against the manifest. The registry is CNCF Distribution (Debian ``docker-registry``) over HTTPS with
Basic auth; Azurite and the Hub stand-in are the ones the AKS supply-chain tests use.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.registry import oci
from components.registry.supply import (
    MANIFEST_NAME,
    STATE_DIR,
    VERIFIED_MARKER,
    FileEntry,
    HuggingFaceRepo,
    IntegrityError,
    Manifest,
    SupplyError,
    fill_from,
    sync_artifact,
)
from tests.registry.oci_support import PASSWORD, USERNAME, DistributionRegistry
from tests.registry.supply_support import LFS_FILES, REPO_ROOT, Azurite, FakeHub, tiny_repo

REV = "cfbefacb99257ffa30c83adab238a50856ac3083"
REPO = "microsoft/Phi-4-mini-instruct-onnx"
VARIANT = "cpu/cpu-int4"
MODEL = "phi-4-mini"
ENTRYPOINT = REPO_ROOT / "components" / "registry" / "fill" / "entrypoint.py"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite-edge")) as emulator:
        yield emulator


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DistributionRegistry]:
    (tmp_path / "registry").mkdir()
    with DistributionRegistry(tmp_path / "registry") as server:
        assert server.cert is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
        yield server


@pytest.fixture
def published(azurite: Azurite, registry: DistributionRegistry, tmp_path: Path,
              request: pytest.FixtureRequest) -> tuple[Manifest, oci.PublishReport]:
    """A real sync of the tiny ONNX variant into Azurite, then its publish to the registry."""
    container = azurite.container("e" + hashlib.sha256(request.node.name.encode()).hexdigest()[:20])
    with FakeHub(repo=REPO, revision=REV, files=tiny_repo(), lfs=LFS_FILES) as hub:
        report = sync_artifact(HuggingFaceRepo(repo=REPO, revision=REV, patterns=(f"{VARIANT}/*",),
                                               endpoint=hub.endpoint),
                               container, model=MODEL, kind="onnx", revision=REV, workdir=tmp_path)
    assert report.manifest is not None
    pushed = oci.publish(registry.client(), report.manifest, oci.blob_fetcher(container, MODEL, REV),
                         workdir=tmp_path)
    return report.manifest, pushed


def device(registry: DistributionRegistry, **kwargs: Any) -> oci.OciArtifacts:
    return oci.OciArtifacts(registry=registry.client(**kwargs))


def test_publish_pushes_one_layer_per_file_whose_digest_is_the_manifest_sha256(
        published: tuple[Manifest, oci.PublishReport], registry: DistributionRegistry) -> None:
    manifest, report = published
    assert sorted(report.pushed) == sorted([MANIFEST_NAME, *(f.path for f in manifest.files)])
    client = registry.client().client()
    target = registry.client().container(MODEL, REV)
    response = client.do_request(f"https://{target.manifest_url()}", "GET",
                                 headers={"Accept": oci.OCI_MANIFEST_MEDIA_TYPE})
    assert response.headers["Docker-Content-Digest"] == report.digest
    doc = response.json()
    assert doc["artifactType"] == oci.ARTIFACT_TYPE
    layers = {layer["annotations"][oci.TITLE_ANNOTATION]: layer["digest"] for layer in doc["layers"]}
    assert layers == {f"{VARIANT}/genai_config.json": "sha256:" + hashlib.sha256(
        tiny_repo()[f"{VARIANT}/genai_config.json"]).hexdigest(),
                      f"{VARIANT}/model.onnx": "sha256:" + hashlib.sha256(tiny_repo()[f"{VARIANT}/model.onnx"]).hexdigest()}
    config = client.get_blob(target, doc["config"]["digest"]).content
    assert config == manifest.to_json().encode(), "the config blob is the project manifest, byte for byte"


def test_a_republish_pushes_nothing(published: tuple[Manifest, oci.PublishReport], registry: DistributionRegistry,
                                    azurite: Azurite, tmp_path: Path) -> None:
    manifest, first = published

    def never(_entry: Any, _scratch: Path) -> Path:
        msg = "a blob already in the registry was fetched again"
        raise AssertionError(msg)

    again = oci.publish(registry.client(), manifest, never, workdir=tmp_path)
    assert again.pushed == []
    assert again.digest == first.digest


def test_the_device_pulls_and_verifies_every_file(published: tuple[Manifest, oci.PublishReport],
                                                  registry: DistributionRegistry, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    report = fill_from(device(registry), model=MODEL, revision=REV, dest=dest, include=(f"{VARIANT}/*",),
                       offline_ok=True)
    assert sorted(report.downloaded) == [f"{VARIANT}/genai_config.json", f"{VARIANT}/model.onnx"]
    for path in report.downloaded:
        assert (dest / path).read_bytes() == tiny_repo()[path]
    assert (dest / STATE_DIR / VERIFIED_MARKER).read_text() == f"{MODEL}@{REV}\n"


def test_a_tampered_blob_in_the_registry_is_refused(published: tuple[Manifest, oci.PublishReport],
                                                    registry: DistributionRegistry, tmp_path: Path) -> None:
    manifest, _ = published
    entry = next(f for f in manifest.files if f.path.endswith("model.onnx"))
    stored = registry.blob_path(entry.sha256)
    stored.write_bytes(bytes(entry.size))  # same size, other bytes: the registry serves it as is
    dest = tmp_path / "models"
    with pytest.raises(IntegrityError, match=r"model\.onnx.*refusing to start"):
        fill_from(device(registry), model=MODEL, revision=REV, dest=dest, offline_ok=True)
    assert not (dest / entry.path).exists()
    assert not (dest / STATE_DIR / VERIFIED_MARKER).exists(), "no marker: the IoT Edge server module stays down"


def test_a_consistent_rewrite_of_manifest_and_files_fails_the_pinned_manifest(
        published: tuple[Manifest, oci.PublishReport], registry: DistributionRegistry, tmp_path: Path) -> None:
    """A registry writer who swaps files and manifest together passes every per-file check; the pin does not."""
    manifest, _ = published
    pin = hashlib.sha256(manifest.to_json().encode()).hexdigest()
    evil = tmp_path / "evil.onnx"
    evil.write_bytes(b"\x00evil")
    entry = next(f for f in manifest.files if f.path.endswith("model.onnx"))
    swapped = Manifest(model=MODEL, kind="onnx", source=manifest.source, revision=REV, files=tuple(
        f if f is not entry else type(f)(path=f.path, size=5, sha256=hashlib.sha256(evil.read_bytes()).hexdigest())
        for f in manifest.files))
    oci.publish(registry.client(), swapped, lambda _e, _s: evil, workdir=tmp_path)
    dest = tmp_path / "models"
    fill_from(device(registry), model=MODEL, revision=REV, dest=dest)  # unpinned: consistent, so accepted
    with pytest.raises(IntegrityError, match=rf"the stack pins {pin}"):
        fill_from(device(registry), model=MODEL, revision=REV, dest=tmp_path / "pinned", manifest_sha256=pin)
    assert not (tmp_path / "pinned").exists()


def run_fill(registry: DistributionRegistry, dest: Path, *extra: str,
             password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    assert registry.cert is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AZURE_"))}
    env |= {"SLM_REGISTRY_USERNAME": USERNAME, "SLM_REGISTRY_PASSWORD": password,
            "REQUESTS_CA_BUNDLE": str(registry.cert), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, str(ENTRYPOINT), "--registry", registry.login_server, "--model", MODEL,
                           "--revision", REV, "--dest", str(dest), "--include", f"{VARIANT}/*", "--offline-ok",
                           *extra], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_fill_entrypoint_pulls_restarts_offline_and_refuses_a_changed_local_file(
        published: tuple[Manifest, oci.PublishReport], registry: DistributionRegistry, tmp_path: Path) -> None:
    manifest, _ = published
    pin = hashlib.sha256(manifest.to_json().encode()).hexdigest()
    dest = tmp_path / "models"
    first = run_fill(registry, dest, "--manifest-sha256", pin)
    assert first.returncode == 0, first.stderr
    assert "2 downloaded" in first.stdout
    registry.stop()  # the device reboots without a network
    offline = run_fill(registry, dest, "--manifest-sha256", pin)
    assert offline.returncode == 0, offline.stderr
    assert "registry unreachable" in offline.stdout
    (dest / VARIANT / "model.onnx").write_bytes(b"changed on the device")
    refused = run_fill(registry, dest, "--manifest-sha256", pin)
    assert refused.returncode == 3
    assert refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr
    assert "model.onnx" in refused.stderr
    assert not (dest / STATE_DIR / VERIFIED_MARKER).exists()


def test_the_fill_entrypoint_with_a_wrong_token_fails_in_one_line(
        published: tuple[Manifest, oci.PublishReport], registry: DistributionRegistry, tmp_path: Path) -> None:
    result = run_fill(registry, tmp_path / "models", password="wrong")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr
    assert "wrong" not in result.stderr.split("models/")[0]


def test_the_entrypoint_names_missing_registry_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLM_REGISTRY_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run([sys.executable, str(ENTRYPOINT), "--registry", "slmprodacr.azurecr.io", "--model",
                             MODEL, "--revision", REV, "--dest", str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "SLM_REGISTRY_USERNAME and SLM_REGISTRY_PASSWORD: not set" in result.stderr
    assert json.dumps(result.stderr).count("\\n") == 1


def test_a_file_larger_than_an_upload_chunk_is_pushed_and_pulled(registry: DistributionRegistry, tmp_path: Path) -> None:
    """oras uploads in 16 MB chunks; the first chunk must carry the credentials (a 401 cuts it mid-send)."""
    import os as _os

    data = _os.urandom(20 * 1024 * 1024)
    big = tmp_path / "big.onnx"
    big.write_bytes(data)
    entry = FileEntry(path="cpu/big.onnx", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest = Manifest(model="big-model", kind="onnx", source="hf://x/y", revision=REV, files=(entry,))
    report = oci.publish(registry.client(), manifest, lambda _e, _s: big, workdir=tmp_path)
    assert report.pushed == [MANIFEST_NAME, entry.path]
    dest = tmp_path / "models"
    fill_from(device(registry), model="big-model", revision=REV, dest=dest)
    assert hashlib.sha256((dest / entry.path).read_bytes()).hexdigest() == entry.sha256


def test_the_acr_bearer_token_flow_pushes_across_scopes_and_the_edge_token_only_pulls(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """ACR's flow: a 401 naming a scope, Basic credentials at /oauth2/token, a Bearer JWT per scope. The
    mirror's identity may pull and push; the edge token (a pull-only scope map) may only pull."""
    from tests.registry.oci_support import TokenServer

    (tmp_path / "registry").mkdir()
    grants = {"mirror": ("mirror-secret", ("pull", "push")), USERNAME: (PASSWORD, ("pull",))}
    with TokenServer(tmp_path, grants=grants) as tokens, \
            DistributionRegistry(tmp_path / "registry", token_server=tokens) as server:
        assert server.cert is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
        data = b"weights" * 1000
        local = tmp_path / "model.onnx"
        local.write_bytes(data)
        entry = FileEntry(path="cpu/model.onnx", size=len(data), sha256=hashlib.sha256(data).hexdigest())
        manifest = Manifest(model=MODEL, kind="onnx", source="hf://x/y", revision=REV, files=(entry,))
        mirror = server.client(username="mirror", password="mirror-secret")
        report = oci.publish(mirror, manifest, lambda _e, _s: local, workdir=tmp_path)
        assert report.pushed == [MANIFEST_NAME, entry.path]
        asked = {(scope.rpartition(":")[0], frozenset(scope.rpartition(":")[2].split(","))) for scope in tokens.scopes}
        # The HEAD's pull token could not upload: the client fetched a pull+push one (the registry orders them freely).
        assert asked == {(f"repository:models/{MODEL}", frozenset({"pull"})),
                         (f"repository:models/{MODEL}", frozenset({"pull", "push"}))}
        fill_from(device(server), model=MODEL, revision=REV, dest=tmp_path / "models")
        assert (tmp_path / "models" / entry.path).read_bytes() == data
        local.write_bytes(data)
        other = Manifest(model="other-model", kind="onnx", source="hf://x/y", revision=REV, files=(entry,))
        with pytest.raises(SupplyError, match=r"refused the upload.*UNAUTHORIZED"):
            oci.publish(device(server).registry, other, lambda _e, _s: local, workdir=tmp_path)
