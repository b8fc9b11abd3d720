"""Every shipped stack builds under the SDK mock monitor, and the plan keeps its structural promises."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest
from stack_support import REPO_ROOT, STACK_NAMES

from slmctl.loader import PLACEHOLDER_SECRET, load_stack_file
from slmctl.plan import Plan, make_plan

TAGGABLE_EXEMPT = {
    # Types whose ARM resources take no tags (or whose tags live on the parent resource).
    "azure-native:authorization:RoleAssignment", "azure-native:authorization:ManagementLockByScope",
    "azure-native:monitor:DiagnosticSetting", "azure-native:network:Subnet",
    "azure-native:network:PrivateDnsZoneGroup", "azure-native:storage:BlobContainer",
    "azure-native:storage:BlobServiceProperties", "azure-native:keyvault:Secret",
    "azure-native:managedidentity:FederatedIdentityCredential",
    "azure-native:monitor:DataCollectionRuleAssociation", "azure-native:cognitiveservices:Deployment",
    "azure-native:containerservice:AgentPool",
    "azure-native:containerregistry:ScopeMap", "azure-native:containerregistry:Token",  # ACR proxy resources
}


@cache
def plan_of(name: str) -> Plan:
    return make_plan(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{name}.yaml"))


@pytest.mark.parametrize("name", STACK_NAMES)
class TestEveryStack:
    def test_builds_and_declares_the_four_components(self, name: str) -> None:
        types = {r.type for r in plan_of(name).recording.registrations}
        assert "slm:compute:ServingWorkloads" in types
        assert any(t.endswith(":MonitoringStack") for t in types)
        if name != "local":
            assert any(t.endswith(":ModelRegistry") for t in types)
            assert "slm:compute:InferenceCluster" in types

    def test_every_resource_has_a_component_ancestor(self, name: str) -> None:
        regs = plan_of(name).recording.registrations
        components = {r.urn for r in regs if not r.custom}
        orphans = [r.urn for r in regs if r.custom and r.parent not in components]
        assert orphans == []

    def test_required_tags_reach_every_taggable_azure_resource(self, name: str) -> None:
        missing = []
        for r in plan_of(name).recording.registrations:
            if not r.type.startswith("azure-native:") or r.type in TAGGABLE_EXEMPT or r.read:
                continue
            tags = r.inputs.get("tags") or {}
            if not {"environment", "owner", "costCenter", "workload"} <= set(tags):
                missing.append(f"{r.type} {r.name}")
        assert missing == []

    def test_no_secret_value_reaches_plan_json(self, name: str) -> None:
        text = plan_of(name).to_json()
        assert PLACEHOLDER_SECRET not in text

    def test_local_creates_no_azure_resources(self, name: str) -> None:
        azure = [r for r in plan_of(name).recording.registrations if r.type.startswith("azure-native:")]
        assert (azure == []) == (name == "local")


def test_plan_json_is_byte_identical_across_runs() -> None:
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    assert make_plan(loaded).to_json() == make_plan(loaded).to_json()


def test_child_names_are_stable_identity() -> None:
    names = {r.name for r in plan_of("dev").recording.registrations}
    assert {"env-rg", "env-vnet", "env-log"} <= names


def test_prod_protects_stateful_resources() -> None:
    protected = {r.type for r in plan_of("prod").recording.registrations if r.protect}
    assert {"azure-native:storage:StorageAccount", "azure-native:keyvault:Vault",
            "azure-native:containerregistry:Registry"} <= protected


def test_plan_json_command_prints_the_documented_shape() -> None:
    result = subprocess.run([sys.executable, "-m", "slmctl", "plan", "prod", "--json", "--no-gate"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stack"] == "prod"
    first = doc["resources"][0]
    assert {"urn", "type", "name", "parent", "inputs", "dependencies"} <= set(first)
    assert (REPO_ROOT / "build" / "prod" / "plan.json").read_text() == result.stdout


def _scaled_objects(name: str) -> list[dict[str, object]]:
    return [r.inputs for r in plan_of(name).recording.registrations
            if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject"]


def test_managed_prometheus_tiers_scale_on_the_shared_workspace_with_keda_identity() -> None:
    regs = plan_of("prod").recording.registrations
    (amw,) = [r for r in regs if r.type == "azure-native:monitor:AzureMonitorWorkspace"]
    assert amw.name == "env-amw"  # shared: created by Foundation, not by MonitoringStack
    for scaled in _scaled_objects("prod"):
        (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]  # type: ignore[index]
        assert trigger["metadata"]["serverAddress"].endswith(".prometheus.monitor.azure.com")
        assert trigger["authenticationRef"] == {"name": "prometheus"}
    (fic,) = [r for r in regs if r.name == "serving-fic-keda"]
    assert fic.inputs["subject"] == "system:serviceaccount:kube-system:keda-operator"
    reader = next(r for r in regs if r.name == "env-amw-ra-keda-reader")
    assert reader.inputs["roleDefinitionId"].endswith("b0d8363b-8ddd-447d-831f-62ca05bff136")


def test_in_cluster_tiers_scale_on_in_cluster_prometheus() -> None:
    for scaled in _scaled_objects("dev"):
        (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]  # type: ignore[index]
        assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"


def test_control_plane_may_operate_the_kubelet_identity_and_join_the_subnet() -> None:
    regs = {r.name: r for r in plan_of("dev").recording.registrations}
    assert regs["env-id-aks-kubelet-ra-control-plane"].inputs["roleDefinitionId"].endswith(
        "f1a07417-d97a-45cb-824c-7a7467783830")  # Managed Identity Operator
    assert regs["env-snet-aks-ra-control-plane"].inputs["roleDefinitionId"].endswith(
        "4d97b98b-1d4f-4787-a291-c67834d212e7")  # Network Contributor


def test_the_deployer_may_apply_iot_edge_deployments_and_push_the_onnx_image() -> None:
    regs = {r.name: r for r in plan_of("prod").recording.registrations}
    assert regs["edge-ra-deployer"].inputs["roleDefinitionId"].endswith(
        "4fc6c259-987e-4a07-842e-c321cc9d413f")  # IoT Hub Data Contributor
    assert regs["edge-ra-deployer"].inputs["principalType"] == "ServicePrincipal"  # the CI identity by default
    push = next(r for name, r in regs.items() if name.endswith("-ra-deployer-push"))
    assert push.inputs["roleDefinitionId"].endswith("8311e382-0749-4cb8-b61a-304f252e45ec")  # AcrPush


def test_the_deployer_may_mirror_weights_into_the_registry_storage() -> None:
    regs = {r.name: r for r in plan_of("prod").recording.registrations}
    writer = regs["models-weights-ra-deployer-weights"].inputs
    assert writer["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe")  # Blob Data Contributor
    assert writer["principalType"] == "ServicePrincipal"
    assert str(writer["scope"]).endswith("/storageAccounts/slmprodweights")


def test_gated_model_weights_come_from_the_registry_so_no_pod_or_vault_holds_the_hub_token() -> None:
    regs = plan_of("prod").recording.registrations
    assert not any(r.name == "models-kv-hugging-face-token" for r in regs)  # only the mirror needs it
    (spc,) = [r.inputs for r in regs if r.type.endswith(":SecretProviderClass") and "gemma" in r.name]
    assert {d["key"] for d in spc["spec"]["secretObjects"][0]["data"]} == {"api-key"}
    (gemma,) = [r.inputs for r in regs if r.type == "kubernetes:apps/v1:Deployment" and "gemma" in r.name]
    pod = gemma["spec"]["template"]["spec"]
    assert "HF_TOKEN" not in {e["name"] for c in pod["containers"] + pod["initContainers"] for e in c.get("env", [])}
    assert [c["name"] for c in pod["initContainers"]] == ["fill-model"]


def test_private_managed_grafana_is_reachable_through_its_private_endpoint() -> None:
    regs = {r.name: r for r in plan_of("prod").recording.registrations}
    assert regs["observability-grafana"].inputs["properties"]["publicNetworkAccess"] == "Disabled"
    pe = regs["observability-grafana-pe"].inputs
    assert pe["privateLinkServiceConnections"][0]["groupIds"] == ["grafana"]
    zones = regs["observability-grafana-pe-dns"].inputs["privateDnsZoneConfigs"]
    assert zones[0]["privateDnsZoneId"].endswith("/privatelink.grafana.azure.com")


def test_gpu_workloads_declare_their_shape_for_the_memory_fit_policy() -> None:
    deployments = [r for r in plan_of("prod").recording.registrations
                   if r.type == "kubernetes:apps/v1:Deployment" and r.name.startswith("serving-")]
    assert deployments
    for dep in deployments:
        annotations = dep.inputs["metadata"]["annotations"]
        assert annotations["slm.io/gpu-memory-gib"] == "80"
        assert {"slm.io/model-layers", "slm.io/model-kv-heads", "slm.io/model-head-dim"} <= set(annotations)
