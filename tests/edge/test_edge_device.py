"""EdgeDevice / EdgeHub under the SDK mock monitor (slmctl.recorder): every delivery, defaults and errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.edge_device import EdgeDevice, EdgeDeviceArgs, EdgeHub, EdgeHubArgs
from slmctl import recorder
from slmctl.recorder import Recording, record, redact, secret_paths
from stacks.settings import EnvironmentSettings
from tests.edge.fleets import AUTH_PROXY_IMAGE, OLLAMA_IMAGE, SHA, make_settings

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: edge, user: {token: kube-secret-token}}]\n"
DYNAMIC = "pulumi-python:dynamic:Resource"
ENGINE_KEY = "edge-engine-key-value"


def _args(s: EnvironmentSettings, fleet_name: str, **over: Any) -> EdgeDeviceArgs:
    fleet = s.edge.fleets[fleet_name]
    values: dict[str, Any] = {
        "fleet_name": fleet_name, "fleet": fleet, "device_class_name": fleet.device_class,
        "device_class": s.edge.device_classes[fleet.device_class], "model_id": fleet.model,
        "model": s.models[fleet.model],
    }
    values.update(over)
    return EdgeDeviceArgs(**values)


def _plan(s: EnvironmentSettings, *fleets: str, **over: Any) -> Recording:
    def program() -> None:
        hub = EdgeHub("edge", EdgeHubArgs(resource_group_name="rg", tags=s.azure_tags()))
        for name in fleets:
            delivery = s.edge.fleets[name].delivery
            extra: dict[str, Any] = {"engine_api_key": pulumi.Output.secret(ENGINE_KEY)}
            if delivery == "kubernetes":
                extra["kubeconfig"] = pulumi.Output.secret(KUBECONFIG)
            if delivery == "iot-edge":
                extra["iot_hub_host_name"] = hub.hub_host_name
            dev = EdgeDevice(f"edge-{name}", _args(s, name, **{**extra, **over}))
            if dev.bootstrap_script is not None:
                pulumi.export(f"{name}-script", dev.bootstrap_script)
            if dev.deployment_manifest is not None:
                pulumi.export(f"{name}-manifest", dev.deployment_manifest)
                pulumi.export(f"{name}-ids", dev.configuration_ids)

    return record(program)


def _reveal(value: Any) -> Any:
    """The wire value with secret wrappers replaced by what they hold (to read a secret deployment's shape)."""
    if isinstance(value, dict):
        if value.get(recorder.SECRET_SIG) == recorder.SECRET_VALUE_SIG:
            return _reveal(value.get("value"))
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _one(rec: Recording, type_token: str, name: str) -> recorder.Registration:
    (reg,) = [r for r in rec.by_type(type_token) if r.name == name]
    return reg


class TestKubernetes:
    def test_every_object_goes_through_the_fleet_provider_with_a_secret_kubeconfig(self) -> None:
        rec = _plan(make_settings(), "shop")
        provider = _one(rec, "pulumi:providers:kubernetes", "edge-shop-k8s")
        assert secret_paths(provider.inputs) == ["kubeconfig"]
        k8s_objects = [r for r in rec.registrations if r.type.startswith("kubernetes:")]
        assert {r.type for r in k8s_objects} == {
            "kubernetes:core/v1:Namespace", "kubernetes:core/v1:ServiceAccount", "kubernetes:apps/v1:DaemonSet",
            "kubernetes:core/v1:Service", "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            # Ollama checks no key: the gate's key (a Secret) and its nginx template (a ConfigMap, no key in it).
            "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap"}
        for obj in k8s_objects:
            assert obj.provider.startswith(provider.urn + "::"), obj.name
            assert "slm:edge:EdgeDevice" in obj.urn
        assert "kube-secret-token" not in json.dumps([r.inputs for r in k8s_objects])

    def test_daemon_set_is_pinned_offline_capable_and_inside_the_device_envelope(self) -> None:
        s = make_settings()
        ds = redact(_one(_plan(s, "shop"), "kubernetes:apps/v1:DaemonSet", "edge-shop-server").inputs)
        meta = ds["metadata"]
        assert meta["labels"]["slm.io/tier"] == "edge"
        assert meta["annotations"]["checkov.io/skip1"].startswith("CKV_K8S_15=")
        assert meta["annotations"]["slm.io/model-version"] == "phi4-mini:3.8b-q4_K_M"
        assert meta["annotations"]["slm.io/model-sha256"] == SHA
        pod = ds["spec"]["template"]["spec"]
        server, proxy = pod["containers"]
        assert proxy["image"] == AUTH_PROXY_IMAGE
        for c in [server, *pod["initContainers"]]:
            assert c["image"] == OLLAMA_IMAGE
        for c in [server, proxy, *pod["initContainers"]]:
            assert c["imagePullPolicy"] == "IfNotPresent"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"] == c["resources"]["limits"]
        limit_mib = int(server["resources"]["limits"]["memory"].removesuffix("Mi"))
        assert limit_mib <= s.edge.device_classes["nuc"].memory_gib * 1024
        assert limit_mib == int(s.edge.device_classes["nuc"].model_memory_gib * 1024)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert pod["hostNetwork"] is False
        assert pod["nodeSelector"]["kubernetes.io/arch"] == "amd64"
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["nuc-01", "nuc-02"]
        assert {v["name"] for v in pod["volumes"]} == {"tmp", "models", "proxy-config", "proxy-run"}
        assert "hostPath" not in json.dumps(pod["volumes"])
        env = {e["name"]: e["value"] for e in server["env"]}
        assert env["OLLAMA_CONTEXT_LENGTH"] == "4096"
        assert "ollama show phi4-mini:3.8b-q4_K_M" in pod["initContainers"][0]["args"][0]

    def test_ollama_is_reached_only_through_its_api_key_gate(self) -> None:
        rec = _plan(make_settings(), "shop")
        pod = _one(rec, "kubernetes:apps/v1:DaemonSet", "edge-shop-server").inputs["spec"]["template"]["spec"]
        server, proxy = pod["containers"]
        assert {e["name"]: e.get("value") for e in server["env"]}["OLLAMA_HOST"] == "127.0.0.1:11434"
        assert "ports" not in server
        assert proxy["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert proxy["env"] == [{"name": "ENGINE_API_KEY", "valueFrom": {"secretKeyRef": {
            "name": "slm-shop-api-key", "key": "api-key"}}}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert server[probe]["httpGet"] == {"path": "/healthz", "port": 8080}
            assert proxy[probe]["httpGet"]["path"] == "/-/proxy"
        secret = _one(rec, "kubernetes:core/v1:Secret", "edge-shop-api-key").inputs
        assert secret["metadata"]["name"] == "slm-shop-api-key"
        assert secret_paths(secret) == ["stringData"]
        config = _one(rec, "kubernetes:core/v1:ConfigMap", "edge-shop-auth-proxy").inputs
        assert {v["name"]: v for v in pod["volumes"]}["proxy-config"]["configMap"]["name"] == \
            config["metadata"]["name"]
        assert ENGINE_KEY not in json.dumps(config)
        svc = _one(rec, "kubernetes:core/v1:Service", "edge-shop-svc").inputs
        assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
        allow = _one(rec, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "edge-shop-allow").inputs
        assert allow["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]

    def test_namespace_enforces_restricted_pod_security(self) -> None:
        ns = _one(_plan(make_settings(), "shop"), "kubernetes:core/v1:Namespace", "edge-shop-ns").inputs
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert ns["metadata"]["labels"]["slm.io/tier"] == "edge"

    def test_llamacpp_serves_the_pulled_blob_with_metrics(self) -> None:
        fetch = OLLAMA_IMAGE
        image = "slmdevacr.azurecr.io/ggml-org/llama.cpp:server@sha256:" + "c" * 64
        s = make_settings(shop={"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes",
                                "engine": "llamacpp", "devices": ["n1"], "image": image})
        ds = _one(_plan(s, "shop", fetch_image=fetch), "kubernetes:apps/v1:DaemonSet", "edge-shop-server").inputs
        pod = ds["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert args[args.index("--model") + 1] == f"/models/blobs/sha256-{SHA}"
        assert "--metrics" in args
        assert pod["initContainers"][0]["image"] == fetch

    def test_device_count_does_not_change_the_resource_count(self) -> None:
        def count(n: int) -> int:
            fleet = {"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes", "engine": "ollama",
                     "devices": [f"d{i}" for i in range(n)], "image": OLLAMA_IMAGE,
                     "auth_proxy_image": AUTH_PROXY_IMAGE}
            return len(_plan(make_settings(shop=fleet), "shop").registrations)

        assert count(2) == count(200)


class TestIotEdge:
    def test_hub_is_entra_only_tls12_private_with_identity_and_tags(self) -> None:
        hub = redact(_one(_plan(make_settings()), "azure-native:iothub:IotHubResource", "edge-hub").inputs)
        assert hub["properties"]["disableLocalAuth"] is True
        assert hub["properties"]["minTlsVersion"] == "1.2"
        assert hub["properties"]["publicNetworkAccess"] == "Disabled"
        assert hub["identity"] == {"type": "SystemAssigned"}
        assert hub["tags"]["environment"] == "dev"

    def test_fleet_is_a_base_and_a_layered_configuration_targeted_by_tags(self) -> None:
        rec = _plan(make_settings(), "plant")
        base = _one(rec, DYNAMIC, "edge-plant-base").inputs
        model = _one(rec, DYNAMIC, "edge-plant-model").inputs
        for cfg in (base, model):
            assert cfg["hubHostName"].endswith(".azure-devices.net")
            assert cfg["targetCondition"] == "tags.slmFleet='plant' AND tags.site='plant-3'"
            assert cfg["priority"] == 10
        model = _reveal(model)
        assert model["configurationId"].startswith("slm-plant-model-")
        agent = model["content"]["modulesContent"]["$edgeAgent"]
        # Ollama's module and the API-key gate in front of it (Ollama checks no key).
        assert sorted(agent) == ["properties.desired.modules.slm-plant", "properties.desired.modules.slm-plant-auth-proxy"]
        assert agent["properties.desired.modules.slm-plant"]["settings"]["image"] == OLLAMA_IMAGE
        hub_layer = model["content"]["modulesContent"]["$edgeHub"]
        assert list(hub_layer) == ["properties.desired.routes.slm_plant_upstream"]
        base = _reveal(base)
        system = base["content"]["modulesContent"]["$edgeAgent"]["properties.desired"]["systemModules"]
        assert system["edgeHub"]["settings"]["image"] == "mcr.microsoft.com/azureiotedge-hub:1.5"
        assert rec.outputs["plant-ids"] == [base["configurationId"], model["configurationId"]]

    def test_ollama_module_is_unpublished_and_its_gate_module_holds_the_host_port(self) -> None:
        from components.edge.iot_manifest import join_create_options

        model = _reveal(_one(_plan(make_settings(), "plant"), DYNAMIC, "edge-plant-model").inputs)
        agent = model["content"]["modulesContent"]["$edgeAgent"]
        ollama = agent["properties.desired.modules.slm-plant"]
        gate = agent["properties.desired.modules.slm-plant-auth-proxy"]
        ollama_options, gate_options = join_create_options(ollama["settings"]), join_create_options(gate["settings"])
        assert "PortBindings" not in ollama_options["HostConfig"]  # not on the device's network
        assert "ExposedPorts" not in ollama_options  # Docker refuses them on a container: network mode
        # In the gate's network namespace, on its loopback: no other module on azure-iot-edge reaches it.
        assert ollama_options["HostConfig"]["NetworkMode"] == "container:slm-plant-auth-proxy"
        assert ollama_options["NetworkingConfig"] == {"EndpointsConfig": {}}  # edgeAgent adds no network
        assert ollama["env"]["OLLAMA_HOST"] == {"value": "127.0.0.1:11434"}
        assert "NetworkMode" not in gate_options["HostConfig"]  # the gate owns the namespace, on azure-iot-edge
        assert gate_options["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostPort": "8080"}]}
        assert gate_options["HostConfig"]["ReadonlyRootfs"] is True
        assert gate_options["User"] == "10001:10001"
        assert "uid=10001" in gate_options["HostConfig"]["Tmpfs"]["/run/slm-proxy"]
        assert gate["env"]["ENGINE_API_KEY"] == {"value": ENGINE_KEY}  # rides in the secret deployment
        template = gate["env"]["SLM_PROXY_CONFIG_TEMPLATE"]["value"]
        assert "proxy_pass http://127.0.0.1:11434;" in template  # Ollama, in the gate's namespace
        assert ENGINE_KEY not in template
        assert gate["startupOrder"] < ollama["startupOrder"]  # the namespace exists before Ollama joins it

    def test_serialized_provider_and_inputs_hold_no_secret(self) -> None:
        rec = _plan(make_settings(), "plant")
        for reg in rec.by_type(DYNAMIC):
            # The deployment carries the gate's key, so Pulumi keeps it secret; no value shows in plain text.
            assert set(secret_paths(reg.inputs)) <= {"configurationId", "content"}
            assert ENGINE_KEY not in json.dumps(redact(reg.inputs))
            provider = base64.b64decode(reg.inputs["__provider"])
            assert b"IotHubConfigurationProvider" in provider
            assert b"Bearer" not in provider
            assert len(provider) < 1024  # pickled by reference: no captured client or token

    def test_base_deployment_can_be_left_to_the_organization(self) -> None:
        rec = _plan(make_settings(), "plant", base_deployment_enabled=False)
        assert [r.name for r in rec.by_type(DYNAMIC)] == ["edge-plant-model"]

    def test_device_count_does_not_change_the_resource_count(self) -> None:
        def count(n: int) -> int:
            fleet = {"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": "ollama",
                     "devices": [f"d{i}" for i in range(n)], "image": OLLAMA_IMAGE,
                     "auth_proxy_image": AUTH_PROXY_IMAGE}
            return len(_plan(make_settings(plant=fleet), "plant").registrations)

        assert count(1) == count(500)


class TestFoundryLocal:
    def test_registers_only_the_component_and_exports_the_script(self) -> None:
        rec = _plan(make_settings(), "desk")
        mine = [r for r in rec.registrations if "edge-desk" in r.urn]
        assert [r.type for r in mine] == ["slm:edge:EdgeDevice"]
        assert mine[0].inputs["delivery"] == "foundry-local"
        script = rec.outputs["desk-script"]
        assert "winget install --id Microsoft.FoundryLocal" in script
        assert "foundry model download $Model" in script
        assert "docker" not in script.lower()
        assert "kubectl" not in script

    def test_macos_gets_a_brew_bash_script(self) -> None:
        s = make_settings(desk={"device_class": "mac", "model": "phi-4-mini", "delivery": "foundry-local",
                                "devices": ["m1"]})
        script = _plan(s, "desk").outputs["desk-script"]
        assert script.startswith("#!/usr/bin/env bash")
        assert "brew tap microsoft/foundrylocal" in script
        assert "brew install foundrylocal" in script
        assert "foundry service start" in script


class TestErrors:
    def test_oversized_model_is_refused_before_anything_is_declared(self) -> None:
        s = make_settings()
        pi4 = s.edge.device_classes["pi4"]
        with pytest.raises(ValueError, match=r"more than the 2\.7 GiB device class 'pi4'"):
            EdgeDevice("e", _args(s, "shop", device_class_name="pi4", device_class=pi4,
                                  fleet=s.edge.fleets["shop"].model_copy(update={"device_class": "pi4"}),
                                  kubeconfig="x"))

    def test_a_class_other_than_the_fleets_is_refused(self) -> None:
        s = make_settings()
        with pytest.raises(ValueError, match="names device class 'nuc' but was given 'pi4'"):
            EdgeDevice("e", _args(s, "shop", device_class_name="pi4", kubeconfig="x"))

    def test_kubernetes_without_kubeconfig_names_the_config_key(self) -> None:
        with pytest.raises(ValueError, match="require_secret\\('slm-platform:edgeKubeconfig-shop'\\)"):
            EdgeDevice("e", _args(make_settings(), "shop"))

    def test_tag_only_image_is_refused_when_pinning_is_required(self) -> None:
        s = make_settings()
        fleet = s.edge.fleets["plant"].model_copy(update={"image": "ollama/ollama:0.12.6"})
        with pytest.raises(ValueError, match="is not pinned by digest"):
            EdgeDevice("e", _args(s, "plant", fleet=fleet, iot_hub_host_name="h", engine_api_key="k"))

    def test_foundry_local_on_a_linux_class_is_refused(self) -> None:
        s = make_settings()
        fleet = s.edge.fleets["desk"].model_copy(update={"device_class": "nuc"})
        with pytest.raises(ValueError, match="D8"):
            EdgeDevice("e", _args(s, "desk", fleet=fleet, device_class_name="nuc",
                                  device_class=s.edge.device_classes["nuc"]))


STACKS = sorted((Path(__file__).resolve().parents[2] / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack_file", STACKS, ids=lambda p: p.name.split(".")[1])
def test_shipped_stack_fleets_build(stack_file: Path) -> None:
    doc = yaml.safe_load(stack_file.read_text())["config"]["slm-platform:settings"]
    s = EnvironmentSettings.model_validate(doc)
    onnx = f"{s.name_prefix}acr.azurecr.io/slm/onnx-server@sha256:{'d' * 64}"
    rec = _plan(s, *sorted(s.edge.fleets), onnx_server_image=onnx, digest_pinning_required=s.tier == "prod")
    assert len(rec.by_type("slm:edge:EdgeDevice")) == len(s.edge.fleets)


def test_an_ollama_fleet_without_a_pinned_gate_image_is_refused_where_digests_are_required() -> None:
    s = make_settings()
    unpinned = s.edge.fleets["plant"].model_copy(update={"auth_proxy_image": None})
    with pytest.raises(ValueError, match=r"fleet 'plant' \(ollama\) has no auth_proxy_image; Ollama checks no API"):
        EdgeDevice("e", _args(s, "plant", fleet=unpinned, iot_hub_host_name="h", engine_api_key="k"))
    tagged = s.edge.fleets["plant"].model_copy(update={"auth_proxy_image": "nginx:1.28.0-alpine"})
    with pytest.raises(ValueError, match=r"auth_proxy_image 'nginx:1\.28\.0-alpine' is not pinned by digest"):
        EdgeDevice("e", _args(s, "plant", fleet=tagged, iot_hub_host_name="h", engine_api_key="k"))
