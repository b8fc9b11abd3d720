"""Weights come only from the ModelRegistry in the private tiers: the rendered pods prove it.

Each serving pod of a prod stack fills its model volume with the registry fill step (arguments
parsed by the entrypoint's real parser), serves exactly the directory it filled, carries no Hugging
Face token, and its namespace's egress reaches only DNS, the private endpoint subnet and Entra ID.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

import pytest

from components.registry.fill.entrypoint import build_parser, problems
from policies.rules.egress import DEFAULT_ALLOWED_EGRESS
from slmctl.recorder import Recording
from tests.inference.builders import FILL_IMAGE, GGUF_SHA256, build, make_settings
from tests.inference.test_inference_workloads import NAMES, of, pod

ALLOWED = [ipaddress.ip_network(c) for c in DEFAULT_ALLOWED_EGRESS]


def fill_args(spec: dict[str, Any]) -> Any:
    (fill,) = [c for c in spec.get("initContainers", []) if c["name"] == "fill-model"]
    assert fill["command"] == ["python", "/app/entrypoint.py"]
    options = build_parser().parse_args(fill["args"])
    assert problems(options) == []
    return fill, options


@pytest.mark.parametrize("name", NAMES)
def test_prod_pods_fill_their_model_volume_from_the_registry(prod_recording: Recording, name: str) -> None:
    spec = pod(prod_recording, name)
    fill, options = fill_args(spec)
    assert fill["image"] == FILL_IMAGE
    assert options.account_url == "https://slmprodweights.blob.core.windows.net"
    assert options.container == "phi4-mini"
    mounts = {m["name"]: m["mountPath"] for m in fill["volumeMounts"]}
    volume = next(v for v in spec["volumes"] if v["name"] in mounts and "persistentVolumeClaim" in v)
    assert str(options.dest).startswith(mounts[volume["name"]] + "/")
    server = spec["containers"][0]
    served = {"phi4": lambda: server["args"][server["args"].index("--model") + 1],
              "phi4-onnx": lambda: server["args"][server["args"].index("--model-dir") + 1],
              "phi4-ollama": lambda: next(e["value"] for e in server["env"] if e["name"] == "OLLAMA_MODELS")}[name]()
    assert served == str(options.dest) or served.startswith(f"{options.dest}/")
    assert not [c for c in spec.get("initContainers", []) if c["name"] in ("pull-model", "download-model")]


def test_the_ollama_store_is_pinned_by_its_blob_digest(prod_recording: Recording) -> None:
    _, options = fill_args(pod(prod_recording, "phi4-ollama"))
    assert options.revision == f"sha256-{GGUF_SHA256}"


def test_vllm_serves_offline_from_the_filled_path(prod_recording: Recording) -> None:
    server = pod(prod_recording, "phi4")["containers"][0]
    assert "--revision" not in server["args"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize("name", NAMES)
def test_model_volumes_outlive_pods_and_are_shared_by_replicas(prod_recording: Recording, name: str) -> None:
    spec = pod(prod_recording, name)
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v)
    (pvc,) = [p for p in of(prod_recording, "PersistentVolumeClaim", f"slm-{name}") if p["metadata"]["name"] == claim]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == "azurefile-csi-premium"


@pytest.mark.parametrize("name", NAMES)
def test_prod_serving_namespaces_have_no_internet_egress(prod_recording: Recording, name: str) -> None:
    cidrs = []
    for policy in of(prod_recording, "NetworkPolicy", f"slm-{name}"):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), policy["metadata"]["name"]
            cidrs += [p["ipBlock"]["cidr"] for p in rule["to"] if "ipBlock" in p]
    assert "10.40.16.0/24" in cidrs  # the private endpoint subnet (weights storage)
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr)
        assert any(net.version == a.version and net.subnet_of(a) for a in ALLOWED), cidr  # type: ignore[arg-type]


def test_no_serving_pod_holds_a_hugging_face_token_when_weights_come_from_the_registry() -> None:
    settings = make_settings("prod", models={"phi-4-mini": {"gated": True}})
    recording = build(settings)
    for name in NAMES:
        spec = pod(recording, name)
        names = [e["name"] for c in [*spec["containers"], *spec.get("initContainers", [])] for e in c.get("env", [])]
        assert "HF_TOKEN" not in names
    for spc in of(recording, "SecretProviderClass"):
        assert "hf-token" not in shlex.join(str(d) for d in spc["spec"]["secretObjects"][0]["data"])


def test_dev_keeps_the_direct_hugging_face_path_by_default(dev_recording: Recording) -> None:
    spec = pod(dev_recording, "phi4")
    assert not [c for c in spec.get("initContainers", []) if c["name"] == "fill-model"]
    assert "--revision" in spec["containers"][0]["args"]


def test_dev_may_opt_into_the_registry_and_then_fills_too() -> None:
    recording = build(make_settings("dev", registry={"weights_source": "registry"}))
    _, options = fill_args(pod(recording, "phi4"))
    assert options.account_url == "https://slmdevweights.blob.core.windows.net"
