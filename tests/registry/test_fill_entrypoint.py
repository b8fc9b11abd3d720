"""The fill init container's entrypoint as the pod runs it: a subprocess against Azurite, with the real
``DefaultAzureCredential`` (answered offline by a local ``az``), and its Dockerfile's layout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.engines.spec import NON_ROOT_UID
from components.registry.supply import HuggingFaceRepo, artifact_prefix, sync_artifact
from tests.registry.supply_support import (
    LFS_FILES,
    REPO_ROOT,
    Azurite,
    FakeHub,
    cli_credential_env,
    tiny_repo,
    write_fake_az,
)

FILL = REPO_ROOT / "components" / "registry" / "fill"
REV = "0123456789abcdef0123456789abcdef01234567"
REPO = "microsoft/Phi-4-mini-instruct-onnx"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Azurite, Any]]:
    with Azurite(tmp_path_factory.mktemp("azurite-fill")) as azurite, \
            FakeHub(repo=REPO, revision=REV, files=tiny_repo(), lfs=LFS_FILES) as hub:
        container = azurite.container("phi4-mini")
        sync_artifact(HuggingFaceRepo(repo=REPO, revision=REV, patterns=("*", "*/*"), endpoint=hub.endpoint), container,
                      model="phi-4-mini", kind="onnx", revision=REV, workdir=tmp_path_factory.mktemp("w"))
        yield azurite, container


def fill(azurite: Azurite, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert azurite.cert is not None
    env = cli_credential_env(write_fake_az(tmp_path / "bin"), azurite.cert) | {"PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, str(FILL / "entrypoint.py"), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)


def args_for(azurite: Azurite, dest: Path, *extra: str) -> list[str]:
    return ["--account-url", azurite.account_url, "--container", "phi4-mini", "--model", "phi-4-mini",
            "--revision", REV, "--dest", str(dest), *extra]


def test_fill_writes_the_verified_variant_and_exits_0(synced: tuple[Azurite, Any], tmp_path: Path) -> None:
    azurite, _ = synced
    dest = tmp_path / "models" / "phi-4-mini" / REV
    result = fill(azurite, tmp_path, *args_for(azurite, dest, "--include", "cpu/cpu-int4/*"))
    assert result.returncode == 0, result.stderr
    assert "verified 2 files" in result.stdout
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "cpu/cpu-int4/genai_config.json", "cpu/cpu-int4/model.onnx"]
    assert (dest / "cpu/cpu-int4/model.onnx").read_bytes() == tiny_repo()["cpu/cpu-int4/model.onnx"]
    again = fill(azurite, tmp_path, *args_for(azurite, dest, "--include", "cpu/cpu-int4/*"))
    assert "0 downloaded, 2 reused" in again.stdout


def test_a_tampered_blob_stops_the_pod(synced: tuple[Azurite, Any], tmp_path: Path) -> None:
    azurite, container = synced
    name = artifact_prefix("phi-4-mini", REV) + "tokenizer.json"
    original = container.get_blob_client(name).download_blob().readall()
    container.get_blob_client(name).upload_blob(original.replace(b"BPE", b"XYZ"), overwrite=True)
    try:
        result = fill(azurite, tmp_path, *args_for(azurite, tmp_path / "m"))
    finally:
        container.get_blob_client(name).upload_blob(original, overwrite=True)
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert "tokenizer.json" in line
    assert "refusing to start" in line
    assert not (tmp_path / "m" / "tokenizer.json").exists()


def test_bad_arguments_exit_2_one_line_each(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(FILL / "entrypoint.py"), "--account-url", "http://x",
                             "--container", "Bad_Name", "--model", "phi-4-mini", "--revision", "main",
                             "--dest", "relative/dir"], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":", 2)[1].strip() for line in lines] == [
        "--account-url", "--container", "--revision", "--dest"]


def test_the_image_holds_what_the_entrypoint_imports_and_runs_as_the_pod_uid() -> None:
    dockerfile = (FILL / "Dockerfile").read_text(encoding="utf-8")
    copies = re.findall(r"^COPY (?:--chown=\S+ )?(.+) \S+$", dockerfile, flags=re.MULTILINE)
    context = FILL.parent  # ModelRegistry builds with context components/registry
    for sources in copies:
        for source in sources.split():
            assert (context / source).is_file(), source
    assert f"USER {NON_ROOT_UID}:{NON_ROOT_UID}" in dockerfile
    assert 'ENTRYPOINT ["python", "/app/entrypoint.py"]' in dockerfile
    requirements = (FILL / "requirements.txt").read_text(encoding="utf-8")
    assert "azure-identity" in requirements
    assert "azure-storage-blob" in requirements
    assert "oras" in requirements  # the edge source (components/registry/oci.py)
