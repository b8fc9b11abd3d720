"""Edge test data: a small valid environment with device classes and fleets to vary."""

from __future__ import annotations

import copy
from typing import Any

from stacks.settings import EnvironmentSettings

SHA = "a" * 64
DIGEST = "b" * 64
OLLAMA_IMAGE = f"slmdevacr.azurecr.io/ollama/ollama:0.12.6@sha256:{DIGEST}"
LLAMACPP_IMAGE = f"slmdevacr.azurecr.io/ggml-org/llama.cpp:server@sha256:{'c' * 64}"
ONNX_IMAGE = f"slmdevacr.azurecr.io/slm/onnx-server@sha256:{'d' * 64}"
AUTH_PROXY_IMAGE = f"slmdevacr.azurecr.io/nginx:1.28.0-alpine@sha256:{'e' * 64}"
"""The API-key gate in front of Ollama (nginx imported into the registry), pinned like the engines."""

BASE: dict[str, Any] = {
    "tier": "dev",
    "name_prefix": "slmdev",
    "tags": {"owner": "edge-team", "cost_center": "cc-1234"},
    "models": {
        "phi-4-mini": {
            "family": "phi4-mini", "parameters_billion": 3.8, "layers": 32, "kv_heads": 8, "head_dim": 128,
            "max_context_tokens": 131072,
            "artifacts": {
                "gguf": {"ollama_tag": "phi4-mini:3.8b-q4_K_M", "sha256": SHA, "quantization": "q4_k_m"},
                "onnx": {"repo": "microsoft/Phi-4-mini-instruct-onnx", "revision": "1" * 40,
                         "cpu_variant": "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"},
            },
        },
    },
    "edge": {
        "device_classes": {
            "pi4": {"architecture": "arm64", "memory_gib": 4, "cpus": 4},
            "nuc": {"architecture": "amd64", "memory_gib": 16, "cpus": 8},
            "laptop": {"architecture": "amd64", "os": "windows", "memory_gib": 16, "cpus": 8},
            "mac": {"architecture": "arm64", "os": "macos", "memory_gib": 16, "cpus": 8,
                    "accelerator": "apple-silicon"},
        },
        "fleets": {
            "shop": {"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes", "engine": "ollama",
                     "devices": ["nuc-01", "nuc-02"], "image": OLLAMA_IMAGE, "auth_proxy_image": AUTH_PROXY_IMAGE},
            "plant": {"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "ollama",
                      "device_selector": {"site": "plant-3"}, "image": OLLAMA_IMAGE,
                      "auth_proxy_image": AUTH_PROXY_IMAGE},
            "desk": {"device_class": "laptop", "model": "phi-4-mini", "delivery": "foundry-local",
                     "devices": ["lt-1"]},
        },
    },
}


def settings_dict(**edge_overrides: Any) -> dict[str, Any]:
    """A deep copy of ``BASE`` with ``edge.fleets`` entries replaced/added (None removes one)."""
    doc = copy.deepcopy(BASE)
    for name, fleet in edge_overrides.items():
        if fleet is None:
            doc["edge"]["fleets"].pop(name, None)
        else:
            doc["edge"]["fleets"][name] = fleet
    return doc


def make_settings(**edge_overrides: Any) -> EnvironmentSettings:
    """Validated settings (see ``settings_dict``)."""
    return EnvironmentSettings.model_validate(settings_dict(**edge_overrides))
