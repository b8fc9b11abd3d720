"""Throughput of the model supply chain on this machine, beside ``cp`` of the same bytes.

Run: ``.venv/bin/python -m benchmarks.sync_bench [MB]`` (default 256 MB; needs ``npm ci`` for Azurite).
Generates incompressible files shaped like a two-shard checkpoint, then times, end to end through the
real code paths: ``cp`` of the bytes on this disk; the mirror (a local Hub-shaped server over HTTP ->
``huggingface_hub`` -> sha256 check -> Azurite over HTTPS with the real blob client); the fill step
(Azurite -> volume, hashing while it writes); and a re-fill that only re-verifies what is on disk
(the cost every pod start pays). With ``docker-registry`` installed (scripts/install-tools.sh) it also times
the edge path: publishing the verified blob copy to a local CNCF Distribution registry (HTTPS, Basic auth)
and a device fill pulling it by digest. Prints MB/s and seconds per GB; asserts nothing about time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from components.registry import oci
from components.registry.supply import HuggingFaceRepo, fill, fill_from, read_manifest, sync_artifact
from tests.registry.oci_support import DistributionRegistry
from tests.registry.supply_support import Azurite, FakeHub

REV = "0123456789abcdef0123456789abcdef01234567"
SHARDS = 2


def _files(total_mb: int) -> dict[str, bytes]:
    per = total_mb * 1024 * 1024 // SHARDS
    files = {f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors": os.urandom(per) for i in range(SHARDS)}
    files["config.json"] = b'{"architectures": ["Phi3ForCausalLM"]}\n'
    return files


def _rate(label: str, size: int, seconds: float) -> None:
    mb = size / 1e6
    sys.stdout.write(f"{label:<44} {mb / seconds:8.1f} MB/s  {seconds / (size / 1e9):7.2f} s/GB  ({seconds:.2f} s)\n")


def _edge_rows(root: Path, azurite: Azurite, container: object, size: int) -> None:
    """Publish to a real OCI registry and fill a device volume from it (registry and Azurite share a cert)."""
    if azurite.cert is None:
        return
    (root / "registry").mkdir()
    os.environ["REQUESTS_CA_BUNDLE"] = str(azurite.cert)
    manifest = read_manifest(container, "bench", REV)  # type: ignore[arg-type]
    if manifest is None:
        return
    with DistributionRegistry(root / "registry", cert=azurite.cert, key=azurite.cert.parent / "key.pem") as reg:
        started = time.perf_counter()
        oci.publish(reg.client(), manifest, oci.blob_fetcher(container, "bench", REV), workdir=root)  # type: ignore[arg-type]
        _rate("publish: Azurite -> verify -> OCI registry", size, time.perf_counter() - started)
        dest = root / "device"
        started = time.perf_counter()
        fill_from(oci.OciArtifacts(registry=reg.client()), model="bench", revision=REV, dest=dest, offline_ok=True)
        _rate("edge fill: OCI registry -> device, hashed", size, time.perf_counter() - started)


def main() -> None:
    """Generate, copy, sync, fill, re-verify; print the figures."""
    total_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    files = _files(total_mb)
    size = sum(len(b) for b in files.values())
    with tempfile.TemporaryDirectory(prefix="slm-sync-bench-") as tmp:
        root = Path(tmp)
        src = root / "src"
        src.mkdir()
        for name, data in files.items():
            (src / name).write_bytes(data)
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(src), str(root / "cp")], check=True)
        _rate("cp -r (same bytes, same disk)", size, time.perf_counter() - started)
        (root / "azurite").mkdir()
        with Azurite(root / "azurite") as azurite, FakeHub(repo="bench/model", revision=REV, files=files,
                                                            lfs=frozenset(n for n in files if n.endswith("safetensors"))) as hub:
            container = azurite.container("bench")
            upstream = HuggingFaceRepo(repo="bench/model", revision=REV, endpoint=hub.endpoint)
            started = time.perf_counter()
            sync_artifact(upstream, container, model="bench", kind="safetensors", revision=REV, workdir=root)
            _rate("sync: Hub (HTTP) -> verify -> Azurite (HTTPS)", size, time.perf_counter() - started)
            started = time.perf_counter()
            sync_artifact(upstream, container, model="bench", kind="safetensors", revision=REV, workdir=root)
            sys.stdout.write(f"{'re-sync (nothing to copy)':<44} {time.perf_counter() - started:8.2f} s\n")
            dest = root / "volume"
            started = time.perf_counter()
            fill(container, model="bench", revision=REV, dest=dest)
            _rate("fill: Azurite -> volume, hashed as written", size, time.perf_counter() - started)
            started = time.perf_counter()
            fill(container, model="bench", revision=REV, dest=dest)
            _rate("re-fill: verify what is on disk (pod start)", size, time.perf_counter() - started)
            if shutil.which("docker-registry") is not None:
                _edge_rows(root, azurite, container, size)
        shutil.rmtree(root / "cp", ignore_errors=True)
    sys.stdout.write(f"{size / 1e6:.0f} MB in {len(files)} files. The storage end is Azurite (Node, in memory, "
                     "HTTPS) on this machine, not Azure, and the registry is CNCF Distribution on the same disk, not ACR: "
                     "compare the rows with each other and with cp, not with Azure's limits.\n")


if __name__ == "__main__":
    main()
