"""The serving workloads' security contract under mocks (every tier, every engine)."""

from __future__ import annotations

from typing import Any

import pytest

from components.engines.spec import ALLOWED_GATEWAY_PATHS
from components.serving_workloads import ServingWorkload, ServingWorkloads
from slmctl.recorder import SECRET_SIG, Recording, record
from tests.inference.builders import deploy, make_settings

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
FORBIDDEN_ROUTES = ("/metrics", "/pause", "/update_weights", "/invocations", "/tokenize", "/health")


def of(recording: Recording, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    token = {"Deployment": DEPLOYMENT}.get(kind, kind)
    found = [r.inputs for r in recording.registrations if r.type == token or r.type.endswith(f":{kind}")]
    if namespace is not None:
        found = [i for i in found if i["metadata"].get("namespace") == namespace]
    return found


def deployment(recording: Recording, name: str) -> dict[str, Any]:
    (found,) = [d for d in of(recording, "Deployment") if d["metadata"]["name"] == name]
    return found


def pod(recording: Recording, name: str) -> dict[str, Any]:
    return deployment(recording, name)["spec"]["template"]["spec"]


@pytest.fixture(params=["dev", "prod", "local"])
def recording(request: pytest.FixtureRequest) -> Recording:
    return request.getfixturevalue(f"{request.param}_recording")


NAMES = ("phi4", "phi4-ollama", "phi4-onnx")


class TestPodSecurity:
    @pytest.mark.parametrize("name", NAMES)
    def test_every_container_meets_pss_restricted(self, recording: Recording, name: str) -> None:
        spec = pod(recording, name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] >= 10000
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx["runAsNonRoot"] is True

    @pytest.mark.parametrize("name", NAMES)
    def test_writable_paths_are_emptydirs_or_claims_with_size_limits(self, recording: Recording, name: str) -> None:
        spec = pod(recording, name)
        volumes = {v["name"]: v for v in spec["volumes"]}
        for mount in spec["containers"][0]["volumeMounts"]:
            volume = volumes[mount["name"]]
            assert set(volume) - {"name"} <= {"emptyDir", "ephemeral", "persistentVolumeClaim", "csi", "secret"}
            if "emptyDir" in volume:
                assert volume["emptyDir"]["sizeLimit"].endswith("Mi")
        assert any(m["mountPath"] == "/tmp" for m in spec["containers"][0]["volumeMounts"])

    def test_vllm_gets_a_memory_backed_dev_shm(self, recording: Recording) -> None:
        spec = pod(recording, "phi4")
        shm = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/dev/shm")
        volume = next(v for v in spec["volumes"] if v["name"] == shm["name"])
        assert volume["emptyDir"]["medium"] == "Memory"

    @pytest.mark.parametrize("name", NAMES)
    def test_requests_equal_limits_with_ephemeral_storage(self, recording: Recording, name: str) -> None:
        for container in pod(recording, name)["containers"]:
            resources = container["resources"]
            assert resources["requests"] == resources["limits"]
            assert {"cpu", "memory", "ephemeral-storage"} <= set(resources["limits"])

    def test_only_gpu_workloads_request_gpus(self, dev_recording: Recording) -> None:
        assert pod(dev_recording, "phi4")["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert "nvidia.com/gpu" not in pod(dev_recording, "phi4-ollama")["containers"][0]["resources"]["limits"]

    @pytest.mark.parametrize("name", NAMES)
    def test_no_service_account_token_and_a_dedicated_account(self, recording: Recording, name: str) -> None:
        spec = pod(recording, name)
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == name

    @pytest.mark.parametrize("name", NAMES)
    def test_probes_startup_readiness_liveness_differ(self, recording: Recording, name: str) -> None:
        container = pod(recording, name)["containers"][0]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
        assert container["readinessProbe"] != container["livenessProbe"]


class TestPlacement:
    def test_gpu_workload_tolerates_the_gpu_taint_and_targets_its_pool(self, dev_recording: Recording) -> None:
        spec = pod(dev_recording, "phi4")
        assert spec["nodeSelector"] == {"kubernetes.azure.com/agentpool": "gpu"}
        assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in spec["tolerations"]

    def test_cpu_workload_does_not_tolerate_the_gpu_taint(self, dev_recording: Recording) -> None:
        spec = pod(dev_recording, "phi4-ollama")
        assert spec["nodeSelector"] == {"kubernetes.azure.com/agentpool": "cpu"}
        assert "tolerations" not in spec

    @pytest.mark.parametrize("name", NAMES)
    def test_replicas_spread_across_zones_and_nodes(self, recording: Recording, name: str) -> None:
        keys = [c["topologyKey"] for c in pod(recording, name)["topologySpreadConstraints"]]
        assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]


class TestLabelsAndNamespace:
    def test_pods_carry_the_recommended_and_platform_labels(self, dev_recording: Recording) -> None:
        labels = deployment(dev_recording, "phi4")["spec"]["template"]["metadata"]["labels"]
        assert labels == {
            "app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "phi4",
            "app.kubernetes.io/component": "inference", "app.kubernetes.io/part-of": "slm-platform",
            "slm.io/model": "phi-4-mini", "slm.io/engine": "vllm", "azure.workload.identity/use": "true"}

    @pytest.mark.parametrize("name", NAMES)
    def test_each_workload_has_a_restricted_namespace(self, recording: Recording, name: str) -> None:
        (ns,) = [n for n in of(recording, "Namespace") if n["metadata"]["name"] == f"slm-{name}"]
        labels = ns["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert "pod-security.kubernetes.io/enforce-version" in labels
        assert deployment(recording, name)["metadata"]["namespace"] == f"slm-{name}"

    def test_service_account_is_annotated_with_its_workload_identity(self, dev_recording: Recording) -> None:
        (sa,) = of(dev_recording, "ServiceAccount", "slm-phi4")
        assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == "client-phi4"
        assert sa["automountServiceAccountToken"] is False


class TestSecrets:
    def test_azure_api_key_comes_from_key_vault_through_the_csi_driver(self, dev_recording: Recording) -> None:
        (spc,) = of(dev_recording, "SecretProviderClass", "slm-phi4")
        assert spc["spec"]["parameters"]["keyvaultName"] == "slmdev-kv"
        assert spc["spec"]["parameters"]["clientID"] == "client-phi4"
        assert spc["spec"]["secretObjects"][0]["secretName"] == "engine-api-key"
        container = pod(dev_recording, "phi4")["containers"][0]
        (key,) = [e for e in container["env"] if e["name"] == "VLLM_API_KEY"]
        assert key["valueFrom"]["secretKeyRef"] == {"name": "engine-api-key", "key": "api-key"}
        assert any(m["mountPath"] == "/mnt/secrets-store" for m in container["volumeMounts"])
        assert of(dev_recording, "Secret") == []

    def test_local_api_key_is_a_secret_marked_secret_on_the_wire(self, local_recording: Recording) -> None:
        (secret,) = of(local_recording, "Secret", "slm-phi4")
        assert SECRET_SIG in secret["stringData"]
        assert secret["stringData"]["value"] == {"api-key": "local-test-key"}
        assert of(local_recording, "SecretProviderClass") == []

    @pytest.mark.parametrize("tier", ["dev", "local"])
    def test_ollama_is_reached_only_through_its_api_key_gate(self, request: pytest.FixtureRequest,
                                                              tier: str) -> None:
        rec: Recording = request.getfixturevalue(f"{tier}_recording")
        ns = "slm-phi4-ollama"
        spec = pod(rec, "phi4-ollama")
        containers = {c["name"]: c for c in spec["containers"]}
        assert set(containers) == {"ollama", "auth-proxy"}
        ollama, proxy = containers["ollama"], containers["auth-proxy"]
        # Ollama listens on loopback and declares no port; the gate holds the only (named) port.
        assert {"name": "OLLAMA_HOST", "value": "127.0.0.1:11434"} in ollama["env"]
        assert "ports" not in ollama
        assert proxy["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        # The key: the same Secret as ENGINE_API_KEY elsewhere, read by the gate alone, never a literal.
        (key,) = proxy["env"]
        assert key == {"name": "ENGINE_API_KEY",
                       "valueFrom": {"secretKeyRef": {"name": "engine-api-key", "key": "api-key"}}}
        assert not any("API_KEY" in e["name"] for e in ollama["env"])
        if tier == "dev":
            (spc,) = of(rec, "SecretProviderClass", ns)
            assert spc["spec"]["secretObjects"][0]["secretName"] == "engine-api-key"
            assert any(m["mountPath"] == "/mnt/secrets-store" for m in proxy["volumeMounts"])
        else:
            (secret,) = of(rec, "Secret", ns)
            assert secret["stringData"]["value"] == {"api-key": "local-test-key"}
        # Probes: the engine's through the gate's open /healthz (by number), the gate's on itself.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert ollama[probe]["httpGet"] == {"path": "/healthz", "port": 8080}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert proxy[probe]["httpGet"] == {"path": "/-/proxy", "port": "http"}
        # The template comes from a ConfigMap with no key in it; the rendered config lives in memory.
        (config,) = of(rec, "ConfigMap", ns)
        template = config["data"]["nginx.conf.template"]
        assert '"Bearer ${ENGINE_API_KEY}"' in template
        assert "local-test-key" not in template
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["proxy-config"]["configMap"]["name"] == config["metadata"]["name"]
        assert volumes["proxy-run"]["emptyDir"]["medium"] == "Memory"
        assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
        # Who reaches it, where: the Service, the gateway's NetworkPolicy and the Ingress all name the gate.
        (svc,) = of(rec, "Service", ns)
        assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
        gateway = {p["metadata"]["name"]: p for p in of(rec, "NetworkPolicy", ns)}["allow-gateway"]
        assert gateway["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
        (ingress,) = of(rec, "Ingress", ns)
        backends = {p["backend"]["service"]["port"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
        assert backends == {"http"}


class TestTraffic:
    @pytest.mark.parametrize("name", NAMES)
    def test_namespace_denies_all_traffic_by_default(self, recording: Recording, name: str) -> None:
        (deny,) = [p for p in of(recording, "NetworkPolicy", f"slm-{name}")
                   if p["metadata"]["name"] == "default-deny"]
        assert deny["spec"]["podSelector"] == {}
        assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]

    def test_gateway_and_monitoring_reach_only_the_serving_port(self, dev_recording: Recording) -> None:
        policies = {p["metadata"]["name"]: p for p in of(dev_recording, "NetworkPolicy", "slm-phi4")}
        gateway = policies["allow-gateway"]["spec"]["ingress"][0]
        assert gateway["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "app-routing-system"}
        assert gateway["ports"] == [{"port": 8000, "protocol": "TCP"}]
        monitoring = policies["allow-monitoring"]["spec"]["ingress"][0]
        assert monitoring["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"}

    def test_ollama_has_no_metrics_policy(self, dev_recording: Recording) -> None:
        names = {p["metadata"]["name"] for p in of(dev_recording, "NetworkPolicy", "slm-phi4-ollama")}
        assert names == {"default-deny", "allow-gateway", "allow-egress"}

    def test_egress_allows_dns_and_https_but_not_the_metadata_endpoint(self, dev_recording: Recording) -> None:
        (egress,) = [p for p in of(dev_recording, "NetworkPolicy", "slm-phi4")
                     if p["metadata"]["name"] == "allow-egress"]
        dns, https = egress["spec"]["egress"]
        assert {p["port"] for p in dns["ports"]} == {53}
        assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
        assert "169.254.169.254/32" in https["to"][0]["ipBlock"]["except"]

    @pytest.mark.parametrize("name", NAMES)
    def test_ingress_is_tls_and_exposes_only_the_openai_routes(self, recording: Recording, name: str) -> None:
        (ingress,) = of(recording, "Ingress", f"slm-{name}")
        assert ingress["spec"]["tls"][0]["hosts"] == ["inference.example.internal"]
        paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
        assert paths == [f"/{name}({route})$" for route in ALLOWED_GATEWAY_PATHS]
        assert not [p for p in paths for bad in FORBIDDEN_ROUTES if bad in p]

    def test_service_is_cluster_internal(self, dev_recording: Recording) -> None:
        (service,) = of(dev_recording, "Service", "slm-phi4")
        assert service["spec"]["type"] == "ClusterIP"


class TestScaling:
    def test_vllm_scales_on_queue_depth_with_the_slo_threshold(self, dev_recording: Recording) -> None:
        (scaler,) = of(dev_recording, "ScaledObject", "slm-phi4")
        prometheus = scaler["spec"]["triggers"][0]
        assert prometheus["type"] == "prometheus"
        assert prometheus["metadata"]["query"] == 'sum(vllm:num_requests_waiting{model_name="phi4"})'
        assert prometheus["metadata"]["threshold"] == "8"
        assert prometheus["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"
        assert "cpu" not in [t["type"] for t in scaler["spec"]["triggers"]]

    @pytest.mark.parametrize(("tier", "bounds"), [("dev", (0, 1)), ("prod", (2, 4))])
    def test_replica_bounds_follow_the_tier(self, tier: str, bounds: tuple[int, int],
                                            dev_recording: Recording, prod_recording: Recording) -> None:
        recording = {"dev": dev_recording, "prod": prod_recording}[tier]
        (scaler,) = of(recording, "ScaledObject", "slm-phi4")
        assert (scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]) == bounds

    def test_keda_owns_replicas_and_a_pdb_allows_one_disruption(self, prod_recording: Recording) -> None:
        (reg,) = [r for r in prod_recording.by_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == "phi4"]
        assert "spec.replicas" in reg.ignore_changes
        assert reg.inputs["spec"]["replicas"] == 2
        (pdb,) = of(prod_recording, "PodDisruptionBudget", "slm-phi4")
        assert pdb["spec"]["maxUnavailable"] == 1

    def test_managed_prometheus_gets_a_workload_identity_trigger_auth(self) -> None:
        settings = make_settings("staging")
        recording = record(lambda: deploy(
            settings, prometheus_identity_client_id="keda-client",
            prometheus_server_address="https://amw.prometheus.monitor.azure.com"), stack="staging")
        (auth,) = of(recording, "TriggerAuthentication", "slm-phi4")
        assert auth["spec"]["podIdentity"] == {"provider": "azure-workload", "identityId": "keda-client"}
        (scaler,) = of(recording, "ScaledObject", "slm-phi4")
        assert scaler["spec"]["triggers"][0]["authenticationRef"] == {"name": "prometheus"}


class TestImages:
    def test_prod_images_are_digest_pinned(self, prod_recording: Recording) -> None:
        for name in NAMES:
            for container in [*pod(prod_recording, name)["containers"], *pod(prod_recording, name).get(
                    "initContainers", [])]:
                assert "@sha256:" in container["image"], (name, container["image"])

    def test_registry_built_onnx_image_is_used_for_server_and_downloader(self, dev_recording: Recording) -> None:
        spec = pod(dev_recording, "phi4-onnx")
        assert spec["containers"][0]["image"].startswith("slmdevacr.azurecr.io/onnx-server@sha256:")
        assert spec["initContainers"][0]["image"] == spec["containers"][0]["image"]


def test_workloads_output_describes_each_deployment_for_monitoring() -> None:
    captured: dict[str, ServingWorkloads] = {}
    settings = make_settings("dev")
    record(lambda: captured.setdefault("c", deploy(settings)), stack="dev")
    workloads = captured["c"].workloads
    assert workloads["phi4"] == ServingWorkload(
        deployment="phi4", engine="vllm", namespace="slm-phi4", service_name="phi4", port=8000,
        metrics_path="/metrics", served_model_name="phi4", pod_labels=workloads["phi4"].pod_labels, gpu=True)
    assert workloads["phi4"].pod_labels["app.kubernetes.io/component"] == "inference"
    assert workloads["phi4-ollama"].metrics_path is None
    assert workloads["phi4-ollama"].served_model_name == "phi4-mini:3.8b-q4_K_M"
    assert workloads["phi4-onnx"].gpu is False
