"""Write a stack's edge artifacts for independent checks and for device management (pure, offline).

``slmctl render <stack>`` calls ``render_edge(fleets, device_classes, models, build/<stack>/edge/)`` with
the stack's fleets (``stacks/edge.py``); any program can call it with its own. It writes, per fleet:

- ``iot-edge``: ``<fleet>.deployment.json`` (the full manifest a device runs; valid for
  ``az iot edge set-modules`` once ``${SLM_REGISTRY_PASSWORD}`` (the edge-pull token's password) and
  ``${SLM_ENGINE_API_KEY}`` are substituted: secrets are never written to files), ``<fleet>.layered.json`` (the hub configuration body of the model
  layer, with its target condition and priority) and ``<fleet>.devices.json`` (the twin tags a
  device needs to join the fleet: set them at provisioning, e.g. as a DPS initial twin);
- ``foundry-local``: ``<fleet>.foundry-local.ps1`` (windows) or ``.sh`` (macos).

Kubernetes fleets are rendered by the generic Kubernetes renderer from the recorded plan. Images
the plan only knows after deployment (registry digests) are written as placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from components.domain import DeviceClass, Fleet, ModelSpec
from components.edge import engines as edge_engines
from components.edge import iot_manifest
from components.edge.foundry import bootstrap_script, script_name
from components.model_registry import MODEL_FILL_REPOSITORY, ONNX_SERVER_REPOSITORY

SCHEMA_PATH: Final = Path(__file__).parent / "schema" / "iotedge-deployment.schema.json"
ENGINE_REPOSITORIES: Final = {"ollama": "ollama/ollama", "llamacpp": "ggml-org/llama.cpp",
                              "onnx-genai": ONNX_SERVER_REPOSITORY}
DIGEST_PLACEHOLDER: Final = "@sha256:<digest>"


def _image(fleet: Fleet, registry: str, onnx_server_image: str | None) -> str:
    if fleet.image is not None:
        return fleet.image
    if fleet.engine == "onnx-genai" and onnx_server_image is not None:
        return onnx_server_image
    return f"{registry}/{ENGINE_REPOSITORIES[fleet.engine or 'ollama']}{DIGEST_PLACEHOLDER}"


def _dump(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    return path


def render_edge(
    fleets: Mapping[str, Fleet],
    device_classes: Mapping[str, DeviceClass],
    models: Mapping[str, ModelSpec],
    out_dir: Path,
    *,
    weights_from_registry: bool = False,
    registry_login_server: str = "<registry>",
    onnx_server_image: str | None = None,
) -> list[Path]:
    """Write every fleet's IoT Edge manifests and Foundry Local scripts; return the paths written.

    Args:
        fleets: the fleets by name; each names its device class and model (keys of the next two).
        device_classes: device classes by name.
        models: model specs by id.
        out_dir: where to write (created if missing), e.g. ``build/<stack>/edge``.
        weights_from_registry: the fill step pulls each model from the registry (staging/prod).
            Default: devices pull from the public hub.
        registry_login_server: the registry images come from. Default: a ``<registry>`` placeholder.
        onnx_server_image: ModelRegistry's ONNX server image (``repo@sha256:...``). Default: a
            placeholder under ``registry_login_server``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, fleet in sorted(fleets.items()):
        device = device_classes[fleet.device_class]
        model = models[fleet.model]
        if fleet.delivery == "foundry-local":
            version, sha = fleet.artifact_pin(fleet.model, model)
            path = out_dir / script_name(name, device.os)
            path.write_text(bootstrap_script(fleet_name=name, os=device.os, model=version,
                                             model_id=fleet.model, sha256=sha))
            written.append(path)
            continue
        if fleet.delivery != "iot-edge":
            continue
        image = _image(fleet, registry_login_server, onnx_server_image)
        fetch = (f"{registry_login_server}/{ENGINE_REPOSITORIES['ollama']}{DIGEST_PLACEHOLDER}"
                 if fleet.engine == "llamacpp" else None)
        registry = (edge_engines.EdgeRegistry(
            login_server=registry_login_server,
            fill_image=f"{registry_login_server}/{MODEL_FILL_REPOSITORY}{DIGEST_PLACEHOLDER}")
            if weights_from_registry else None)
        spec = edge_engines.edge_container(name, fleet, fleet.model, model, device, image=image,
                                           fetch_image=None if registry else fetch, registry=registry,
                                           auth_proxy_image=fleet.auth_proxy_image)
        keys = [*spec.secret_env, *([spec.auth_proxy.key] if spec.auth_proxy is not None else [])]
        modules = iot_manifest.fleet_modules(
            name, spec, memory_bytes=spec.resources.memory_mib * 1024 * 1024,
            nano_cpus=spec.resources.cpu_millicores * iot_manifest.NANO_CPUS_PER_MILLICORE,
            secrets={s.name: iot_manifest.ENGINE_API_KEY_PLACEHOLDER for s in keys}
            | {edge_engines.REGISTRY_USERNAME_ENV: edge_engines.EDGE_PULL_TOKEN_NAME,
               edge_engines.REGISTRY_PASSWORD_ENV: iot_manifest.REGISTRY_PASSWORD_PLACEHOLDER})
        condition = iot_manifest.target_condition(name, fleet.device_selector)
        layered = iot_manifest.layered_content(name, modules)
        written.append(_dump(out_dir / f"{name}.deployment.json",
                             iot_manifest.deployment_manifest(name, modules, registry={
                                 "address": registry_login_server, "username": edge_engines.EDGE_PULL_TOKEN_NAME,
                                 "password": iot_manifest.REGISTRY_PASSWORD_PLACEHOLDER})))
        written.append(_dump(out_dir / f"{name}.layered.json", {
            "id": iot_manifest.configuration_id(name, "model", layered), "content": layered,
            "targetCondition": condition, "priority": fleet.priority,
            "labels": {"slmFleet": name, "slmModel": fleet.model, "slmLayer": "model"}}))
        tags = {"slmFleet": name, **dict(sorted(fleet.device_selector.items()))}
        written.append(_dump(out_dir / f"{name}.devices.json", {
            "targetCondition": condition, "twinTags": tags, "devices": sorted(fleet.devices)}))
    return written
