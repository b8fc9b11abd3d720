"""Rendered IoT Edge manifests validate against the manifest schema; scripts never use containers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from components.edge import iot_manifest
from components.edge.render import SCHEMA_PATH
from stacks.edge import render_stack_edge
from stacks.settings import EnvironmentSettings
from tests.edge.fleets import LLAMACPP_IMAGE, ONNX_IMAGE, settings_dict

SCHEMA = json.loads(SCHEMA_PATH.read_text())
FLEETS = {
    "plant": {"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "ollama",
              "device_selector": {"site": "plant-3"}},
    "line": {"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "llamacpp",
             "devices": ["gw-1", "gw-2"], "image": LLAMACPP_IMAGE, "priority": 20},
    "dock": {"device_class": "pi8", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "onnx-genai",
             "device_selector": {"site": "dock"}, "context_tokens": 2048},
}


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, list[Path]]:
    doc = settings_dict(**FLEETS)
    doc["edge"]["device_classes"]["pi8"] = {"architecture": "arm64", "memory_gib": 8, "cpus": 4}
    s = EnvironmentSettings.model_validate(doc)
    return tmp_path, render_stack_edge(s, tmp_path / "edge", registry_login_server="slmdevacr.azurecr.io",
                                 onnx_server_image=ONNX_IMAGE)


def test_render_writes_manifests_and_scripts(rendered: tuple[Path, list[Path]]) -> None:
    root, paths = rendered
    names = sorted(p.name for p in paths)
    assert "desk.foundry-local.ps1" in names
    for fleet in ("plant", "line", "dock"):
        assert {f"{fleet}.deployment.json", f"{fleet}.layered.json", f"{fleet}.devices.json"} <= set(names)
    assert not any(n.startswith("shop") for n in names)  # kubernetes: the generic renderer's job
    assert all(p.parent == root / "edge" for p in paths)


@pytest.mark.parametrize("fleet", sorted(FLEETS))
def test_deployment_manifest_matches_the_schema_and_the_envelope(
        rendered: tuple[Path, list[Path]], fleet: str) -> None:
    root, _ = rendered
    manifest = json.loads((root / "edge" / f"{fleet}.deployment.json").read_text())
    jsonschema.validate(manifest, SCHEMA)
    desired = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
    device_gib = 16.0 if FLEETS[fleet]["device_class"] == "nuc" else 8.0
    assert desired["modules"], "the fleet's modules are in the manifest"
    for module in desired["modules"].values():
        options = iot_manifest.join_create_options(module["settings"])
        host = options["HostConfig"]
        assert 0 < host["Memory"] <= device_gib * 1024**3
        assert host["MemorySwap"] == host["Memory"]
        assert host["NanoCpus"] > 0
        assert host["CapDrop"] == ["ALL"]
        assert module["imagePullPolicy"] == "on-create"
    for system in desired["systemModules"].values():
        json.loads(system["settings"]["createOptions"])


def test_llamacpp_fleet_fetches_before_serving(rendered: tuple[Path, list[Path]]) -> None:
    root, _ = rendered
    modules = json.loads((root / "edge" / "line.deployment.json").read_text())[
        "modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]
    assert modules["slm-line-pull-model"]["startupOrder"] < modules["slm-line"]["startupOrder"]
    assert modules["slm-line-pull-model"]["restartPolicy"] == "on-failure"
    server = iot_manifest.join_create_options(modules["slm-line"]["settings"])
    assert "--metrics" in server["Cmd"]
    assert modules["slm-line"]["settings"]["image"] == LLAMACPP_IMAGE


def test_layered_body_and_device_tags(rendered: tuple[Path, list[Path]]) -> None:
    root, _ = rendered
    layered = json.loads((root / "edge" / "line.layered.json").read_text())
    assert layered["priority"] == 20
    assert layered["targetCondition"] == "tags.slmFleet='line'"
    assert all(k.startswith("properties.desired.modules.")
               for k in layered["content"]["modulesContent"]["$edgeAgent"])
    devices = json.loads((root / "edge" / "line.devices.json").read_text())
    assert devices == {"targetCondition": "tags.slmFleet='line'", "twinTags": {"slmFleet": "line"},
                       "devices": ["gw-1", "gw-2"]}


def test_onnx_fleet_uses_the_registry_image_and_pinned_revision(rendered: tuple[Path, list[Path]]) -> None:
    root, _ = rendered
    module = json.loads((root / "edge" / "dock.deployment.json").read_text())[
        "modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["slm-dock"]
    assert module["settings"]["image"] == ONNX_IMAGE
    fill = iot_manifest.join_create_options(json.loads((root / "edge" / "dock.deployment.json").read_text())[
        "modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["slm-dock-download-model"]["settings"])
    args = fill["Cmd"]
    assert args[args.index("--revision") + 1] == "1" * 40
    assert args[args.index("--variant") + 1].startswith("cpu_and_mobile/")


def test_schema_rejects_an_oversized_create_options_chunk() -> None:
    manifest = iot_manifest.deployment_manifest("x", {"x": {
        "version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": "i", "createOptions": "{" + " " * 600 + "}"}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, SCHEMA)


def test_split_create_options_round_trips_in_512_character_chunks() -> None:
    options = {"Cmd": ["x" * 1400], "HostConfig": {"Memory": 1}}
    chunks = iot_manifest.split_create_options(options)
    assert list(chunks) == ["createOptions", "createOptions01", "createOptions02"]
    assert all(len(c) <= 512 for c in chunks.values())
    assert iot_manifest.join_create_options(chunks) == options


def test_foundry_script_is_a_device_bootstrap_not_a_container(rendered: tuple[Path, list[Path]]) -> None:
    root, _ = rendered
    script = (root / "edge" / "desk.foundry-local.ps1").read_text()
    assert "winget install --id Microsoft.FoundryLocal" in script
    assert "foundry service start" in script
    assert "foundry-local" not in script.split("\n", 3)[-1]  # the CLI is `foundry` (D8)
    for word in ("docker", "kubectl", "microsoft/foundry-local"):
        assert word not in script
