"""InferenceCluster under mocks: the cluster's security settings per tier, pools, identity wiring."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from slmctl.recorder import SECRET_SIG, Recording
from tests.inference.builders import build, make_settings

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"


def one(recording: Recording, token: str) -> dict[str, Any]:
    (reg,) = recording.by_type(token)
    return reg.inputs


def pools(recording: Recording) -> dict[str, dict[str, Any]]:
    return {r.inputs["agentPoolName"]: r.inputs for r in recording.by_type(POOL)}


class TestClusterDefaults:
    def test_entra_id_with_azure_rbac_and_no_local_accounts(self, dev_recording: Recording) -> None:
        cluster = one(dev_recording, CLUSTER)
        assert cluster["aadProfile"]["managed"] is True
        assert cluster["aadProfile"]["enableAzureRBAC"] is True
        assert cluster["aadProfile"]["adminGroupObjectIDs"] == ["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]
        assert cluster["enableRBAC"] is True
        assert cluster["disableLocalAccounts"] is True

    def test_user_assigned_control_plane_and_kubelet_identities(self, dev_recording: Recording) -> None:
        cluster = one(dev_recording, CLUSTER)
        assert cluster["identity"]["type"] == "UserAssigned"
        assert cluster["identity"]["userAssignedIdentities"][0].endswith("/aks-control-plane")
        assert cluster["identityProfile"]["kubeletidentity"] == {
            "resourceId": "kubelet-id", "clientId": "kubelet-client", "objectId": "kubelet-object"}

    def test_cni_overlay_with_cilium_network_policy(self, dev_recording: Recording) -> None:
        net = one(dev_recording, CLUSTER)["networkProfile"]
        assert (net["networkPlugin"], net["networkPluginMode"]) == ("azure", "overlay")
        assert (net["networkDataplane"], net["networkPolicy"]) == ("cilium", "cilium")

    def test_oidc_workload_identity_keda_and_addons(self, dev_recording: Recording) -> None:
        cluster = one(dev_recording, CLUSTER)
        assert cluster["oidcIssuerProfile"]["enabled"] is True
        assert cluster["securityProfile"]["workloadIdentity"]["enabled"] is True
        assert cluster["workloadAutoScalerProfile"]["keda"]["enabled"] is True
        addons = cluster["addonProfiles"]
        assert addons["azureKeyvaultSecretsProvider"]["config"]["enableSecretRotation"] == "true"
        assert addons["azurepolicy"]["enabled"] is True
        assert addons["omsagent"]["config"]["logAnalyticsWorkspaceResourceID"].endswith("/workspaces/logs")

    def test_upgrade_channels_follow_settings(self, dev_recording: Recording) -> None:
        profile = one(dev_recording, CLUSTER)["autoUpgradeProfile"]
        assert profile == {"upgradeChannel": "stable", "nodeOSUpgradeChannel": "NodeImage"}

    def test_public_api_server_is_restricted_to_the_listed_ranges(self, dev_recording: Recording) -> None:
        access = one(dev_recording, CLUSTER)["apiServerAccessProfile"]
        assert access["authorizedIPRanges"] == ["203.0.113.0/24"]
        assert "enablePrivateCluster" not in access

    def test_system_pool_is_inline_tainted_and_ignored_after_creation(self, dev_recording: Recording) -> None:
        (system,) = one(dev_recording, CLUSTER)["agentPoolProfiles"]
        assert system["mode"] == "System"
        assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
        assert system["enableEncryptionAtHost"] is True
        assert system["enableNodePublicIP"] is False
        (reg,) = dev_recording.by_type(CLUSTER)
        assert "agentPoolProfiles" in reg.ignore_changes

    def test_dev_has_no_defender_profile(self, dev_recording: Recording) -> None:
        assert "defender" not in one(dev_recording, CLUSTER)["securityProfile"]

    def test_audit_diagnostic_setting_sends_kube_audit_admin_and_guard(self, dev_recording: Recording) -> None:
        (diag,) = [r.inputs for r in dev_recording.registrations if r.type.endswith(":DiagnosticSetting")]
        assert [log["category"] for log in diag["logs"]] == ["kube-audit-admin", "guard"]
        assert diag["workspaceId"].endswith("/workspaces/logs")

    def test_kubeconfig_reaches_the_provider_only_as_a_secret(self, dev_recording: Recording) -> None:
        (provider,) = [r for r in dev_recording.registrations if r.type == "pulumi:providers:kubernetes"]
        assert SECRET_SIG in provider.inputs["kubeconfig"]

    def test_kubeconfig_logs_in_without_a_person_at_the_keyboard(self, dev_recording: Recording) -> None:
        # Azure answers an exec kubeconfig with `--login devicecode` (the mock answers the same); in CI that
        # waits for a browser forever. The provider must get the azurecli (OIDC session) login instead.
        (provider,) = [r for r in dev_recording.registrations if r.type == "pulumi:providers:kubernetes"]
        kubeconfig = yaml.safe_load(provider.inputs["kubeconfig"]["value"])
        (user,) = kubeconfig["users"]
        assert user["user"]["exec"]["command"] == "kubelogin"
        assert user["user"]["exec"]["args"] == [
            "get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
        assert user["user"]["exec"]["interactiveMode"] == "Never"
        assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://")


class TestProdCluster:
    def test_prod_api_server_is_private(self, prod_recording: Recording) -> None:
        access = one(prod_recording, CLUSTER)["apiServerAccessProfile"]
        assert access["enablePrivateCluster"] is True
        assert "authorizedIPRanges" not in access

    def test_prod_enables_defender_to_the_workspace(self, prod_recording: Recording) -> None:
        defender = one(prod_recording, CLUSTER)["securityProfile"]["defender"]
        assert defender["securityMonitoring"]["enabled"] is True
        assert defender["logAnalyticsWorkspaceResourceId"].endswith("/workspaces/logs")

    def test_prod_system_pool_spans_three_zones(self, prod_recording: Recording) -> None:
        (system,) = one(prod_recording, CLUSTER)["agentPoolProfiles"]
        assert system["availabilityZones"] == ["1", "2", "3"]


class TestPools:
    def test_gpu_pool_is_tainted_labelled_autoscaled_and_private(self, dev_recording: Recording) -> None:
        gpu = pools(dev_recording)["gpu"]
        assert gpu["mode"] == "User"
        assert gpu["nodeTaints"] == ["sku=gpu:NoSchedule"]
        assert gpu["nodeLabels"]["sku"] == "gpu"
        assert gpu["enableAutoScaling"] is True
        assert (gpu["minCount"], gpu["maxCount"]) == (0, 2)
        assert gpu["enableNodePublicIP"] is False
        assert gpu["enableEncryptionAtHost"] is True
        assert gpu["gpuProfile"] == {"driver": "Install"}
        assert gpu["scaleSetPriority"] == "Regular"

    def test_cpu_pool_has_no_gpu_taint_or_profile(self, dev_recording: Recording) -> None:
        cpu = pools(dev_recording)["cpu"]
        assert "nodeTaints" not in cpu
        assert "gpuProfile" not in cpu

    def test_spot_pool_evicts_with_delete_at_market_price(self) -> None:
        settings = make_settings("dev", cluster={"pools": {"gpu": {"spot": True}}})
        gpu = pools(build(settings))["gpu"]
        assert gpu["scaleSetPriority"] == "Spot"
        assert gpu["scaleSetEvictionPolicy"] == "Delete"
        assert gpu["spotMaxPrice"] == -1

    def test_spot_workloads_tolerate_the_spot_taint(self) -> None:
        settings = make_settings("dev", cluster={"pools": {"gpu": {"spot": True}}})
        recording = build(settings)
        deploy = next(r.inputs for r in recording.by_type("kubernetes:apps/v1:Deployment")
                      if r.inputs["metadata"]["name"] == "phi4")
        keys = {t["key"] for t in deploy["spec"]["template"]["spec"]["tolerations"]}
        assert "kubernetes.azure.com/scalesetpriority" in keys

    def test_gpu_operator_mode_skips_aks_drivers_and_installs_the_pinned_operator(self) -> None:
        recording = build(make_settings("dev", cluster={"gpu_driver": "gpu-operator"}))
        assert pools(recording)["gpu"]["gpuProfile"] == {"driver": "None"}
        assert "gpuProfile" not in pools(recording)["cpu"]
        release = one(recording, "kubernetes:helm.sh/v3:Release")
        assert release["chart"] == "gpu-operator"
        assert release["version"].startswith("v")
        assert release["values"]["driver"]["enabled"] is True
        namespace = next(r.inputs for r in recording.by_type("kubernetes:core/v1:Namespace")
                         if r.inputs["metadata"]["name"] == "gpu-operator")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"

    def test_aks_managed_drivers_get_the_device_plugin_and_no_operator(self, dev_recording: Recording) -> None:
        (release,) = [r.inputs for r in dev_recording.by_type("kubernetes:helm.sh/v3:Release")]
        assert release["chart"] == "nvidia-device-plugin"  # without it nvidia.com/gpu is never advertised
        assert release["namespace"] == "kube-system"
        assert release["values"]["nodeSelector"] == {"accelerator": "nvidia"}
        assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in \
            release["values"]["tolerations"]


class TestIdentity:
    def test_one_federated_credential_per_workload_on_the_cluster_issuer(self, dev_recording: Recording) -> None:
        creds = {r.inputs["resourceName"]: r.inputs
                 for r in dev_recording.by_type("azure-native:managedidentity:FederatedIdentityCredential")}
        assert set(creds) == {"wi-phi4", "wi-phi4-ollama", "wi-phi4-onnx"}
        assert creds["wi-phi4"]["subject"] == "system:serviceaccount:slm-phi4:phi4"
        assert creds["wi-phi4"]["audiences"] == ["api://AzureADTokenExchange"]
        assert creds["wi-phi4"]["issuer"].startswith("https://oidc.mock.azure.example/")


class TestLocal:
    def test_local_tier_creates_no_azure_resources(self, local_recording: Recording) -> None:
        assert [r.type for r in local_recording.registrations if r.type.startswith("azure-native:")] == []

    def test_local_provider_uses_the_configured_context(self, local_recording: Recording) -> None:
        (provider,) = [r for r in local_recording.registrations if r.type == "pulumi:providers:kubernetes"]
        assert provider.inputs["context"] == "kind-slm"


def test_every_child_is_parented_to_its_component(dev_recording: Recording) -> None:
    """The Azure resources, the provider and the node agents belong to the cluster; the serving objects to
    the workloads."""
    components = {"slm:compute:InferenceCluster", "slm:compute:ServingWorkloads"}
    children = [r for r in dev_recording.registrations if r.type not in components]
    on_cluster = [r for r in children if r.type.startswith(("azure-native:", "pulumi:providers:", "kubernetes:helm"))]
    assert on_cluster
    assert all("slm:compute:InferenceCluster$" in r.urn for r in on_cluster)
    workloads = [r for r in children if r not in on_cluster]
    assert {r.type for r in workloads} >= {"kubernetes:core/v1:Namespace", "kubernetes:apps/v1:Deployment"}
    assert all("slm:compute:ServingWorkloads$" in r.urn for r in workloads)


@pytest.mark.parametrize("tier", ["dev", "prod"])
def test_every_azure_resource_carries_the_required_tags(tier: str, dev_recording: Recording,
                                                        prod_recording: Recording) -> None:
    recording = {"dev": dev_recording, "prod": prod_recording}[tier]
    for reg in recording.registrations:
        if reg.type in (CLUSTER, POOL):
            assert {"environment", "owner", "costCenter", "workload"} <= set(reg.inputs["tags"]), reg.name
