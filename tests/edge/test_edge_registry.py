"""Edge fleets that load the model from the registry (staging, prod): what the devices are told to run.

Under the SDK mock monitor (the real component code), the k3s DaemonSet and the IoT Edge deployment
reference the registry (``models/<model>:<revision>`` with the fleet's pull token) and nothing of a
public hub; the fill step's arguments parse with the real entrypoint parser; the k3s namespace denies
egress but DNS and the registry endpoint. ``slmctl plan/render prod`` show the same for the shipped fleet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pulumi
import pytest

from components.edge import engines as edge_engines
from components.edge import iot_manifest
from components.edge_device import (
    EdgeDevice,
    EdgeDeviceArgs,
    EdgeHub,
    EdgeHubArgs,
    ModelPull,
    RegistryCredential,
)
from components.registry.fill import entrypoint
from components.registry.supply import gguf_revision
from policies.rules.edge import PUBLIC_HUB_MARKERS
from slmctl.recorder import SECRET_SIG, SECRET_VALUE_SIG, Recording, record, redact
from stacks.settings import EnvironmentSettings
from tests.edge.fleets import ONNX_IMAGE, SHA, make_settings, settings_dict
from tests.registry.supply_support import REPO_ROOT

ACR = "slmprodacr.azurecr.io"
FILL_IMAGE = f"{ACR}/slm/model-fill@sha256:{'e' * 64}"
TOKEN_PASSWORD = "edge-token-password-91c2"
PE_CIDR = "10.42.16.0/24"
KUBECONFIG = "apiVersion: v1\nkind: Config\n"
PUBLIC_HUB_WORDS = (*PUBLIC_HUB_MARKERS, "HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "huggingface")
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DYNAMIC = "pulumi-python:dynamic:Resource"


def _settings() -> EnvironmentSettings:
    return make_settings(
        k3s={"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes", "engine": "onnx-genai",
             "devices": ["nuc-01"], "image": ONNX_IMAGE},
        gw={"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "onnx-genai",
            "device_selector": {"site": "plant-3"}, "image": ONNX_IMAGE})


def _plan(s: EnvironmentSettings, *fleets: str) -> Recording:
    def program() -> None:
        hub = EdgeHub("edge", EdgeHubArgs(resource_group_name="rg", tags=s.azure_tags()))
        for name in fleets:
            fleet = s.edge.fleets[name]
            extra: dict[str, Any] = {"kubeconfig": pulumi.Output.secret(KUBECONFIG)} \
                if fleet.delivery == "kubernetes" else {"iot_hub_host_name": hub.hub_host_name}
            dev = EdgeDevice(f"edge-{name}", EdgeDeviceArgs(
                fleet_name=name, fleet=fleet, device_class_name=fleet.device_class,
                device_class=s.edge.device_classes[fleet.device_class], model_id=fleet.model,
                model=s.models[fleet.model], engine_api_key=pulumi.Output.secret("engine-key"),
                registry_credential=RegistryCredential(address=ACR, username=edge_engines.EDGE_PULL_TOKEN_NAME,
                                                       password=pulumi.Output.secret(TOKEN_PASSWORD)),
                model_pull=ModelPull(login_server=ACR, fill_image=FILL_IMAGE, network_path="private endpoint",
                                     egress_cidrs=(PE_CIDR,)),
                **extra))
            assert dev.delivery == fleet.delivery

    return record(program)


def _reveal(value: Any) -> Any:
    """A wire value with its secrets unwrapped (what the engine hands the dynamic provider)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return _reveal(value["value"])
        return {k: _reveal(v) for k, v in value.items()}
    return [_reveal(v) for v in value] if isinstance(value, list) else value


def _parsed(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fill step's arguments through the real entrypoint parser and checks."""
    monkeypatch.setenv("SLM_REGISTRY_USERNAME", "u")
    monkeypatch.setenv("SLM_REGISTRY_PASSWORD", "p")
    options = entrypoint.build_parser().parse_args(args)
    assert entrypoint.problems(options) == []
    return options


def test_the_k3s_daemon_set_fills_from_the_registry_with_the_fleet_token(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings()
    rec = _plan(s, "k3s")
    (ds,) = [r for r in rec.by_type("kubernetes:apps/v1:DaemonSet") if r.name == "edge-k3s-server"]
    pod = redact(ds.inputs)["spec"]["template"]["spec"]
    (fill,) = pod["initContainers"]
    assert fill["image"] == FILL_IMAGE
    assert fill["command"] == list(edge_engines.FILL_COMMAND)
    onnx = s.models["phi-4-mini"].artifacts.onnx
    assert onnx is not None
    options = _parsed(fill["args"], monkeypatch)
    assert (options.registry, options.model, options.revision) == (ACR, "phi-4-mini", onnx.revision)
    assert options.include == [f"{onnx.cpu_variant}/*"]
    assert options.offline_ok
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in fill["env"] if "valueFrom" in e}
    secret_name = edge_engines.registry_secret_name("k3s")
    assert refs == {"SLM_REGISTRY_USERNAME": {"name": secret_name, "key": "username"},
                    "SLM_REGISTRY_PASSWORD": {"name": secret_name, "key": "password"}}
    (secret,) = [r for r in rec.by_type("kubernetes:core/v1:Secret") if r.name == "edge-k3s-registry-token"]
    assert secret.inputs["metadata"]["name"] == secret_name
    assert secret.inputs["metadata"]["namespace"] == "slm-edge"
    assert TOKEN_PASSWORD not in json.dumps(redact(secret.inputs))
    assert pod["imagePullSecrets"] == [{"name": "slm-k3s-registry"}]
    text = json.dumps(pod)
    assert [w for w in PUBLIC_HUB_WORDS if w in text] == []
    assert pod["containers"][0]["args"][:2] == ["--model-dir", f"/models/{onnx.cpu_variant}"]


def test_the_k3s_namespace_reaches_only_dns_and_the_registry_endpoint() -> None:
    rec = _plan(_settings(), "k3s")
    policies = {r.name: r.inputs["spec"] for r in rec.by_type(NETWORK_POLICY)}
    assert policies["edge-k3s-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    egress = policies["edge-k3s-egress"]["egress"]
    assert egress[0]["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
    assert {p["port"] for p in egress[0]["ports"]} == {53}
    assert egress[1] == {"to": [{"ipBlock": {"cidr": PE_CIDR}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert len(egress) == 2


def test_the_iot_edge_deployment_fills_from_the_registry_and_gates_the_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _plan(_settings(), "gw")
    configs = {r.name: _reveal(r.inputs["content"])["modulesContent"]["$edgeAgent"] for r in rec.by_type(DYNAMIC)}
    runtime = configs["edge-gw-base"]["properties.desired"]["runtime"]
    assert runtime["settings"]["registryCredentials"]["registry"]["address"] == ACR
    prefix = "properties.desired.modules."
    modules = {k.removeprefix(prefix): v for k, v in configs["edge-gw-model"].items()}
    assert sorted(modules) == ["slm-gw", "slm-gw-fill-model"]
    fill = modules["slm-gw-fill-model"]
    assert fill["settings"]["image"] == FILL_IMAGE
    assert fill["restartPolicy"] == "on-failure"
    fill_options = iot_manifest.join_create_options(fill["settings"])
    _parsed(fill_options["Cmd"], monkeypatch)
    assert fill_options["Entrypoint"] == list(edge_engines.FILL_COMMAND)
    assert fill["env"]["SLM_REGISTRY_USERNAME"] == {"value": edge_engines.EDGE_PULL_TOKEN_NAME}
    assert fill["env"]["SLM_REGISTRY_PASSWORD"] == {"value": TOKEN_PASSWORD}
    server = iot_manifest.join_create_options(modules["slm-gw"]["settings"])
    onnx = _settings().models["phi-4-mini"].artifacts.onnx
    assert onnx is not None
    assert server["Entrypoint"] == ["/bin/sh", "-c"]
    assert server["Cmd"][:4] == [iot_manifest.GATE_SCRIPT, f"phi-4-mini@{onnx.revision}",
                                 *edge_engines.ONNX_SERVER_COMMAND]
    text = json.dumps(modules)
    assert [w for w in PUBLIC_HUB_WORDS if w in text] == []


def test_the_gate_script_serves_only_after_the_marker_of_this_revision(tmp_path: Any) -> None:
    marker = tmp_path / "verified"
    script = iot_manifest.GATE_SCRIPT.replace(edge_engines.VERIFIED_MARKER_PATH, str(marker))

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", "-c", script, "phi-4-mini@abc", "echo", "serving"],
                              capture_output=True, text=True, check=False, timeout=30)

    assert run().returncode == 1
    marker.write_text("phi-4-mini@old\n")
    assert run().returncode == 1
    marker.write_text("phi-4-mini@abc\n")
    assert run().stdout == "serving\n"


def test_a_gguf_fleet_fills_the_ollama_store_by_blob_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings()
    fleet, model = s.edge.fleets["shop"], s.models["phi-4-mini"]
    spec = edge_engines.edge_container("shop", fleet, "phi-4-mini", model, s.edge.device_classes["nuc"],
                                       image="img", registry=edge_engines.EdgeRegistry(login_server=ACR,
                                                                                      fill_image=FILL_IMAGE))
    (step,) = spec.init_steps
    options = _parsed(list(step.args), monkeypatch)
    assert options.revision == gguf_revision(SHA)
    assert options.include is None
    assert spec.args == ("serve",)


def test_slmctl_plan_and_render_prod_put_no_public_hub_on_the_edge_fleet(tmp_path: Any) -> None:
    out = tmp_path / "prod"
    plan = subprocess.run([sys.executable, "-m", "slmctl", "plan", "prod", "--no-gate", "--quiet", "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert plan.returncode == 0, plan.stderr
    resources = json.loads((out / "plan.json").read_text())["resources"]
    (fleet,) = [r for r in resources if r["type"] == "slm:edge:EdgeDevice"]
    assert fleet["inputs"]["modelSource"] == "oci://slmprodacr.azurecr.io/models/phi-4-mini"
    assert "private endpoint" in fleet["inputs"]["modelNetworkPath"]
    (scope,) = [r for r in resources if r["type"] == "azure-native:containerregistry:ScopeMap"]
    assert "repositories/models/phi-4-mini/content/read" in scope["inputs"]["actions"]
    assert not [a for a in scope["inputs"]["actions"] if not a.endswith("/read")]
    rendered = subprocess.run([sys.executable, "-m", "slmctl", "render", "prod", "--out", str(tmp_path / "r")],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert rendered.returncode == 0, rendered.stderr
    (deployment,) = (tmp_path / "r").rglob("plant-floor.deployment.json")
    text = deployment.read_text()
    import jsonschema

    from components.edge.render import SCHEMA_PATH

    jsonschema.validate(json.loads(text), json.loads(SCHEMA_PATH.read_text()))  # az iot edge set-modules' schema
    assert "${SLM_REGISTRY_PASSWORD}" in text
    assert "--registry" in text
    assert [w for w in PUBLIC_HUB_WORDS if w in text] == []


def test_a_pinned_manifest_reaches_the_fill_step_of_edge_and_aks_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.engines.spec import RegistryFill

    pin = "f" * 64
    doc = settings_dict(k3s={"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes",
                             "engine": "onnx-genai", "devices": ["nuc-01"], "image": ONNX_IMAGE})
    doc["models"]["phi-4-mini"]["artifacts"]["onnx"]["manifest_sha256"] = pin
    s = EnvironmentSettings.model_validate(doc)
    spec = edge_engines.edge_container("k3s", s.edge.fleets["k3s"], "phi-4-mini", s.models["phi-4-mini"],
                                       s.edge.device_classes["nuc"], image="img",
                                       registry=edge_engines.EdgeRegistry(login_server=ACR, fill_image=FILL_IMAGE))
    assert _parsed(list(spec.init_steps[0].args), monkeypatch).manifest_sha256 == pin
    aks = RegistryFill(account_url="https://acct.blob.core.windows.net", container="phi4-mini", model="phi-4-mini",
                       revision="1" * 40, manifest_sha256=pin).step("models", "/models")
    monkeypatch.delenv("SLM_REGISTRY_USERNAME")
    options = entrypoint.build_parser().parse_args(list(aks.args))
    assert entrypoint.problems(options) == []
    assert options.manifest_sha256 == pin


def test_a_registry_sourced_gguf_fleet_without_the_blob_digest_is_refused_at_load() -> None:
    from pydantic import ValidationError

    doc = settings_dict(shop={"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes",
                              "engine": "ollama", "devices": ["nuc-01"]})
    doc["registry"] = {"weights_source": "registry"}
    del doc["models"]["phi-4-mini"]["artifacts"]["gguf"]["sha256"]
    with pytest.raises(ValidationError, match=r"models\.phi-4-mini\.artifacts\.gguf\.sha256: required for edge fleet 'shop'"):
        EnvironmentSettings.model_validate(doc)
