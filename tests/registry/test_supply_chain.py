"""The model supply chain end to end: a Hub-shaped upstream -> Azurite (real blob client) -> a volume.

No mock of the storage API: Azurite is the emulator Microsoft ships, reached over HTTPS with bearer
tokens; the upstream is a local server speaking the Hub routes ``huggingface_hub`` calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.registry.supply import (
    MANIFEST_NAME,
    HuggingFaceRepo,
    IntegrityError,
    Manifest,
    OllamaLibrary,
    SupplyError,
    artifact_prefix,
    fill,
    gguf_revision,
    sync_artifact,
)
from tests.registry.supply_support import LFS_FILES, Azurite, FakeHub, FakeOllama, iter_blob_names, tiny_repo

REV = "cfbefacb99257ffa30c83adab238a50856ac3083"
REPO = "microsoft/Phi-4-mini-instruct"
WEIGHTS = ("*.safetensors", "*.json")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator


@pytest.fixture
def container(azurite: Azurite, request: pytest.FixtureRequest) -> Any:
    name = "c" + hashlib.sha256(request.node.name.encode()).hexdigest()[:20]
    return azurite.container(name)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(repo=REPO, revision=REV, files=tiny_repo(), lfs=LFS_FILES) as server:
        yield server


def upstream(hub: FakeHub, patterns: tuple[str, ...] = WEIGHTS) -> HuggingFaceRepo:
    return HuggingFaceRepo(repo=REPO, revision=REV, patterns=patterns, endpoint=hub.endpoint)


def sync(hub: FakeHub, container: Any, tmp_path: Path, **kwargs: Any) -> Any:
    return sync_artifact(upstream(hub), container, model="phi-4-mini", kind="safetensors", revision=REV,
                         workdir=tmp_path, **kwargs)


def test_sync_copies_the_pinned_files_with_a_manifest_of_their_hashes(hub: FakeHub, container: Any,
                                                                     tmp_path: Path) -> None:
    report = sync(hub, container, tmp_path)
    prefix = artifact_prefix("phi-4-mini", REV)
    expected = sorted(p for p in tiny_repo() if p.endswith((".safetensors", ".json")) and "/" not in p)
    assert sorted(report.copied) == expected
    assert sorted(iter_blob_names(container, prefix)) == sorted([prefix + p for p in expected]
                                                                + [prefix + MANIFEST_NAME])
    manifest = Manifest.from_json(container.get_blob_client(prefix + MANIFEST_NAME).download_blob().readall())
    assert manifest.revision == REV
    assert manifest.source == f"hf://{REPO}"
    for entry in manifest.files:
        data = tiny_repo()[entry.path]
        assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        blob = container.get_blob_client(prefix + entry.path).download_blob().readall()
        assert blob == data


def test_a_rerun_copies_nothing(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    sync(hub, container, tmp_path)
    prefix = artifact_prefix("phi-4-mini", REV)
    etags = {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix)}
    hub.downloads.clear()
    report = sync(hub, container, tmp_path)
    assert report.copied == []
    assert report.copied_bytes == 0
    assert hub.downloads == []
    assert {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix)} == etags


def test_an_interrupted_sync_resumes_without_copying_twice(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    class SyncKilledError(Exception):
        pass

    def stop_after_first_copy(event: str, _n: int) -> None:
        if event == "copied":
            raise SyncKilledError

    with pytest.raises(SyncKilledError):
        sync(hub, container, tmp_path, progress=stop_after_first_copy)
    prefix = artifact_prefix("phi-4-mini", REV)
    assert prefix + MANIFEST_NAME not in set(iter_blob_names(container, prefix)), "manifest must come last"
    first = list(hub.downloads)
    assert len(first) == 1
    hub.downloads.clear()
    report = sync(hub, container, tmp_path)
    assert first[0] in report.skipped
    assert first[0] not in hub.downloads
    assert sorted([*report.copied, *report.skipped]) == sorted(f.path for f in report.manifest.files)
    assert len(report.copied) == len(report.manifest.files) - 1


def test_a_changed_upstream_file_fails_closed(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    name = "model-00001-of-00002.safetensors"
    original = tiny_repo()[name]
    hub.tampered[name] = bytes(len(original))  # same size, other bytes
    with pytest.raises(IntegrityError, match=name):
        sync(hub, container, tmp_path)
    prefix = artifact_prefix("phi-4-mini", REV)
    names = set(iter_blob_names(container, prefix))
    assert prefix + name not in names
    assert prefix + MANIFEST_NAME not in names


def test_a_changed_small_file_fails_closed_by_its_git_blob_id(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    hub.tampered["config.json"] = b'{"architectures": ["Evil"], "hidden_size": 64,}\n'[:len(tiny_repo()["config.json"])]
    with pytest.raises(IntegrityError, match=r"config\.json"):
        sync(hub, container, tmp_path)


def test_fill_downloads_and_verifies_then_reuses(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    sync(hub, container, tmp_path)
    dest = tmp_path / "volume"
    first = fill(container, model="phi-4-mini", revision=REV, dest=dest)
    assert first.reused == []
    assert len(first.downloaded) == 5
    for path in first.downloaded:
        assert (dest / path).read_bytes() == tiny_repo()[path]
    (dest / "injected.py").write_text("import os\n")
    second = fill(container, model="phi-4-mini", revision=REV, dest=dest)
    assert second.downloaded == []
    assert sorted(second.reused) == sorted(first.downloaded)
    assert second.removed == ["injected.py"]
    assert not (dest / "injected.py").exists()


def test_fill_refuses_a_tampered_blob_and_leaves_no_file(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    sync(hub, container, tmp_path)
    name = "model-00002-of-00002.safetensors"
    blob = container.get_blob_client(artifact_prefix("phi-4-mini", REV) + name)
    blob.upload_blob(b"\x00" * len(tiny_repo()[name]), overwrite=True)
    dest = tmp_path / "volume"
    with pytest.raises(IntegrityError, match="refusing to start"):
        fill(container, model="phi-4-mini", revision=REV, dest=dest)
    assert not (dest / name).exists()
    assert not list(dest.rglob("*.slm-partial"))


def test_fill_replaces_a_locally_corrupted_file(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    sync(hub, container, tmp_path)
    dest = tmp_path / "volume"
    fill(container, model="phi-4-mini", revision=REV, dest=dest)
    name = "model-00001-of-00002.safetensors"
    (dest / name).write_bytes(b"\x00" * len(tiny_repo()[name]))
    report = fill(container, model="phi-4-mini", revision=REV, dest=dest)
    assert report.downloaded == [name]
    assert (dest / name).read_bytes() == tiny_repo()[name]


def test_fill_without_a_manifest_says_to_sync_first(container: Any, tmp_path: Path) -> None:
    with pytest.raises(SupplyError, match="slmctl models sync"):
        fill(container, model="phi-4-mini", revision=REV, dest=tmp_path / "v")


def test_a_manifest_that_escapes_the_volume_is_refused() -> None:
    doc = {"schema": 1, "model": "m", "kind": "onnx", "source": "hf://a/b", "revision": REV,
           "files": [{"path": "../../etc/passwd", "size": 1, "sha256": "0" * 64}]}
    with pytest.raises(SupplyError, match="not a plain relative path"):
        Manifest.from_json(json.dumps(doc))


def test_onnx_sync_takes_only_the_variant_folder(hub: FakeHub, container: Any, tmp_path: Path) -> None:
    report = sync_artifact(upstream(hub, ("cpu/cpu-int4/*",)), container, model="phi-4-mini", kind="onnx",
                           revision=REV, workdir=tmp_path)
    assert sorted(report.copied) == ["cpu/cpu-int4/genai_config.json", "cpu/cpu-int4/model.onnx"]


GGUF_BLOBS = {
    "application/vnd.docker.container.image.v1+json": b'{"model_format": "gguf", "model_family": "phi3"}',
    "application/vnd.ollama.image.model": b"GGUF" + bytes(range(256)) * 64,
    "application/vnd.ollama.image.template": b"{{ .Prompt }}",
}


def test_an_ollama_tag_mirrors_as_the_store_ollama_loads(container: Any, tmp_path: Path) -> None:
    with FakeOllama(tag="phi4-mini:3.8b-q4_K_M", blobs=GGUF_BLOBS) as registry:
        pinned = FakeOllama.digest(GGUF_BLOBS["application/vnd.ollama.image.model"])
        upstream = OllamaLibrary(tag="phi4-mini:3.8b-q4_K_M", sha256=pinned, endpoint=registry.endpoint)
        report = sync_artifact(upstream, container, model="phi-4-mini", kind="gguf", revision=gguf_revision(pinned),
                               workdir=tmp_path)
        manifest_bytes = registry.manifest()
    assert len(report.copied) == 4
    dest = tmp_path / "ollama"
    fill(container, model="phi-4-mini", revision=gguf_revision(pinned), dest=dest)
    assert (dest / "manifests/registry.ollama.ai/library/phi4-mini/3.8b-q4_K_M").read_bytes() == manifest_bytes
    for data in GGUF_BLOBS.values():
        assert (dest / f"blobs/sha256-{FakeOllama.digest(data)}").read_bytes() == data


def test_a_re_pushed_ollama_tag_fails_closed(container: Any, tmp_path: Path) -> None:
    with FakeOllama(tag="phi4-mini:3.8b-q4_K_M", blobs=GGUF_BLOBS) as registry:
        upstream = OllamaLibrary(tag="phi4-mini:3.8b-q4_K_M", sha256="e" * 64, endpoint=registry.endpoint)
        with pytest.raises(IntegrityError, match="re-pushed"):
            sync_artifact(upstream, container, model="phi-4-mini", kind="gguf", revision=gguf_revision("e" * 64),
                          workdir=tmp_path)
    assert list(iter_blob_names(container, "phi-4-mini/")) == []
