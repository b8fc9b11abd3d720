"""Shipped defaults pass their tier: a prod Kubernetes edge fleet added as docs/adding-an-edge-fleet.md says.

The stack is the shipped ``stacks/Pulumi.prod.yaml`` plus one ``kubernetes`` fleet (k3s) on its device class.
ONNX needs nothing else (the registry's ONNX server image and the registry fill are the defaults). Ollama
needs what the guide says it needs: ``artifacts.gguf`` with its sha256 on the model, and its images by
digest from the stack's registry (the engine and the API-key gate in front of it). The gate runs as a user
runs it (``slmctl gate --stack-file``: the pack over the analyzer protocol, prod levels from the stack name).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "slm-platform:settings"
GGUF_SHA256 = "3c168af1dea0a414299c7d9077e100ac763370e5a98b3c53801a958a47f0a5db"
"""An illustrative blob digest (the real one is printed by ``ollama show --modelfile``)."""


def _prod_with_fleet(tmp_path: Path, engine: str) -> Path:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8"))
    settings: dict[str, Any] = doc["config"][SETTINGS]
    (device_class,) = settings["edge"]["device_classes"]
    fleet: dict[str, Any] = {"device_class": device_class, "model": "phi-4-mini", "delivery": "kubernetes",
                             "engine": engine, "context_tokens": 4096, "devices": ["line-gw-01"]}
    if engine == "ollama":
        settings["models"]["phi-4-mini"]["artifacts"]["gguf"] = {
            "ollama_tag": "phi4-mini:3.8b-q4_K_M", "sha256": GGUF_SHA256}
        registry = f"{settings['name_prefix']}acr.azurecr.io"
        fleet["image"] = f"{registry}/ollama/ollama:0.12.6@sha256:{'a' * 64}"
        fleet["auth_proxy_image"] = f"{registry}/nginx:1.28.0-alpine@sha256:{'b' * 64}"
    settings["edge"]["fleets"]["line-k3s"] = fleet
    out = tmp_path / engine
    out.mkdir()
    path = out / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _gate(path: Path, report: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "slmctl", "gate", "--stack-file", str(path), "--format", "json",
                             "--output", str(report)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                            check=False)
    assert report.is_file(), result.stdout + result.stderr
    return {"exit": result.returncode, **json.loads(report.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped prod stack's own gate report (what the fleet adds is compared with it)."""
    return _gate(REPO_ROOT / "stacks" / "Pulumi.prod.yaml", tmp_path_factory.mktemp("shipped") / "gate.json")


@pytest.mark.parametrize("engine", ["ollama", "onnx-genai"])
def test_a_prod_k3s_fleet_built_from_the_shipped_defaults_passes_the_prod_gate(
        tmp_path: Path, engine: str, shipped: dict[str, Any]) -> None:
    fleet = _gate(_prod_with_fleet(tmp_path, engine), tmp_path / "fleet.json")
    assert fleet["environment"] == "prod"
    mandatory = [(v["policy"], v["resource"], v["message"]) for v in fleet["violations"] if v["level"] == "mandatory"]
    assert mandatory == []
    assert (fleet["exit"], fleet["exitCode"]) == (0, 0)
    # The fleet's objects were analyzed (the k3s provider, namespace, DaemonSet, Service, policies, secrets).
    assert fleet["resourcesAnalyzed"] >= shipped["resourcesAnalyzed"] + 8
    assert {v["resource"] for v in fleet["violations"]} <= {v["resource"] for v in shipped["violations"]}
