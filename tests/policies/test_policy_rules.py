"""Pure rule functions: a compliant baseline per resource, then one override per violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies.rules import aks, cost, data, edge, foundry, monitoring, serving, stack, tokens, workloads
from policies.rules.stack import StackResource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` (dotted, ints index lists) set to ``value`` (None deletes)."""
    out = copy.deepcopy(base)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return out


ACCOUNT = {
    "kind": "AIServices", "identity": {"type": "SystemAssigned"},
    "properties": {"customSubDomainName": "slmprod-ai", "disableLocalAuth": True, "publicNetworkAccess": "Disabled",
                   "restrictOutboundNetworkAccess": True, "allowedFqdnList": ["slmprod.blob.core.windows.net"],
                   "encryption": {"keySource": "Microsoft.KeyVault",
                                  "keyVaultProperties": {"keyVaultUri": "https://kv/", "keyName": "cmk"}}},
}
ACCOUNT_RULES = [foundry.account_kind, foundry.local_auth_disabled, foundry.public_network,
                 foundry.outbound_restricted, foundry.managed_identity, foundry.customer_managed_key]


class TestFoundry:
    def test_compliant_account_has_no_violations(self) -> None:
        assert [m for r in ACCOUNT_RULES for m in r(tokens.FOUNDRY_ACCOUNT, ACCOUNT, {})] == []

    def test_local_auth_on_names_the_path_value_and_fix(self) -> None:
        props = with_(ACCOUNT, "properties.disableLocalAuth", False)
        assert foundry.local_auth_disabled(tokens.FOUNDRY_ACCOUNT, props, {}) == [
            "properties.disableLocalAuth: found false; set it to true and grant callers 'Cognitive Services User' "
            "through Entra ID."]

    def test_public_account_is_reported_unless_acls_deny(self) -> None:
        public = with_(ACCOUNT, "properties.publicNetworkAccess", "Enabled")
        assert foundry.public_network(tokens.FOUNDRY_ACCOUNT, public, {}) == [
            "properties.publicNetworkAccess: found 'Enabled' with properties.networkAcls.defaultAction unset; set "
            "publicNetworkAccess to 'Disabled' and reach the account through a private endpoint (or set "
            "networkAcls.defaultAction to 'Deny' with explicit ipRules)."]
        assert foundry.public_network(tokens.FOUNDRY_ACCOUNT, with_(public, "properties.networkAcls",
                                                             {"defaultAction": "Deny"}), {}) == []

    def test_wrong_kind_and_missing_subdomain(self) -> None:
        props = with_(with_(ACCOUNT, "kind", "OpenAI"), "properties.customSubDomainName", None)
        assert foundry.account_kind(tokens.FOUNDRY_ACCOUNT, props, {}) == [
            "kind: found 'OpenAI'; use 'AIServices', the Foundry resource kind.",
            "properties.customSubDomainName: found unset; set a globally unique subdomain, required for Entra ID "
            "auth and private endpoints."]

    def test_api_key_connection(self) -> None:
        assert foundry.local_auth_disabled("azure-native:cognitiveservices:ProjectConnection",
                                           {"properties": {"authType": "ApiKey"}}, {}) == [
            "properties.authType: found 'ApiKey'; use 'AAD' (managed identity) for the connection."]

    def test_cmk_only_when_required(self) -> None:
        props = with_(ACCOUNT, "properties.encryption", None)
        assert foundry.customer_managed_key(tokens.FOUNDRY_ACCOUNT, props, {"requireCmk": False}) == []
        assert len(foundry.customer_managed_key(tokens.FOUNDRY_ACCOUNT, props, {})) == 1

    def test_deployment_model_allow_list_pin_and_upgrade(self) -> None:
        dep = {"properties": {"model": {"format": "Microsoft", "name": "Phi-4-mini-instruct", "version": "1"},
                              "versionUpgradeOption": "NoAutoUpgrade", "raiPolicyName": "Microsoft.DefaultV2"},
               "sku": {"name": "GlobalStandard", "capacity": 10.0}}
        assert foundry.approved_models(tokens.FOUNDRY_DEPLOYMENT, dep, {"forbidAutoUpgrade": True}) == []
        assert foundry.rai_policy(tokens.FOUNDRY_DEPLOYMENT, dep, {}) == []
        bad = with_(with_(dep, "properties.model.name", "gpt-4o"), "properties.model.version", None)
        bad = with_(bad, "properties.versionUpgradeOption", "OnceNewDefaultVersionAvailable")
        msgs = foundry.approved_models(tokens.FOUNDRY_DEPLOYMENT, bad, {"forbidAutoUpgrade": True,
                                                                 "allowedModels": ["Microsoft/Phi-4"]})
        assert msgs == [
            "properties.model: found 'Microsoft/gpt-4o'; deploy one of the approved SLMs (Microsoft/Phi-4) or add it "
            "to allowedModels.",
            "properties.model.version: found unset; pin the model version.",
            "properties.versionUpgradeOption: found 'OnceNewDefaultVersionAvailable'; use 'NoAutoUpgrade' so the "
            "model changes only through a reviewed deployment."]

    def test_deployment_sku_and_capacity(self) -> None:
        dep = {"sku": {"name": "GlobalProvisionedManaged", "capacity": 500.0}}
        assert foundry.deployment_sku(tokens.FOUNDRY_DEPLOYMENT, dep, {"maxCapacity": 50}) == [
            "sku.name: found 'GlobalProvisionedManaged'; use one of GlobalStandard, DataZoneStandard, Standard in "
            "this environment.",
            "sku.capacity: found 500; at most 50 here (raise maxCapacity in the policy config after a cost review)."]

    def test_preview_type_tokens(self) -> None:
        token = "azure-native:cognitiveservices/v20240601preview:Account"
        assert foundry.no_preview_api(token, {}, {}) == [
            f"type: found preview API version {token!r}; use the default-version token "
            "'azure-native:cognitiveservices:Account'."]
        assert foundry.no_preview_api(tokens.FOUNDRY_ACCOUNT, {}, {}) == []


CLUSTER = {
    "aadProfile": {"managed": True, "adminGroupObjectIDs": ["g"], "enableAzureRBAC": True},
    "enableRBAC": True, "disableLocalAccounts": True,
    "apiServerAccessProfile": {"enablePrivateCluster": True},
    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"},
    "identity": {"type": "SystemAssigned"}, "oidcIssuerProfile": {"enabled": True},
    "securityProfile": {"workloadIdentity": {"enabled": True},
                        "defender": {"securityMonitoring": {"enabled": True}, "logAnalyticsWorkspaceResourceId": "/w"}},
    "addonProfiles": {"azurepolicy": {"enabled": True},
                      "azureKeyvaultSecretsProvider": {"enabled": True, "config": {"enableSecretRotation": "true"}}},
    "autoUpgradeProfile": {"upgradeChannel": "stable", "nodeOSUpgradeChannel": "NodeImage"},
    "sku": {"name": "Base", "tier": "Standard"},
    "agentPoolProfiles": [{"name": "system", "mode": "System", "vmSize": "Standard_D4ds_v5", "count": 3.0,
                           "enableEncryptionAtHost": True, "nodeTaints": ["CriticalAddonsOnly=true:NoSchedule"],
                           "availabilityZones": ["1", "2", "3"]}],
}
CLUSTER_RULES = [aks.entra_rbac, aks.azure_rbac, aks.local_accounts, aks.api_server_access, aks.node_public_ip,
                 aks.legacy_addons, aks.network_policy, aks.workload_identity, aks.azure_policy_addon, aks.defender,
                 aks.secrets_store_csi, aks.encryption_at_host, aks.auto_upgrade, aks.production_sla,
                 aks.gpu_vm_sizes, aks.gpu_pool_isolation]
GPU_POOL = {"vmSize": "Standard_NC4as_T4_v3", "mode": "User", "enableAutoScaling": True, "minCount": 0.0,
            "maxCount": 2.0, "nodeTaints": ["sku=gpu:NoSchedule"], "nodeLabels": {"accelerator": "nvidia"},
            "enableEncryptionAtHost": True, "scaleSetPriority": "Spot", "scaleSetEvictionPolicy": "Delete",
            "spotMaxPrice": -1.0}


class TestAks:
    def test_compliant_cluster_has_no_violations(self) -> None:
        assert [m for r in CLUSTER_RULES for m in r(tokens.CLUSTER, CLUSTER, {"requirePrivateCluster": True})] == []

    def test_local_accounts(self) -> None:
        assert aks.local_accounts(tokens.CLUSTER, with_(CLUSTER, "disableLocalAccounts", False), {}) == [
            "disableLocalAccounts: found false; set it to true (requires managed Entra ID) so nobody holds a "
            "non-expiring admin kubeconfig."]

    def test_network_policy_required_even_without_network_profile(self) -> None:
        assert aks.network_policy(tokens.CLUSTER, with_(CLUSTER, "networkProfile", None), {}) == [
            "networkProfile.networkPolicy: found unset; set 'cilium' (or 'azure'/'calico') so NetworkPolicies are "
            "enforced."]

    def test_public_api_server_needs_ranges_without_open_cidr(self) -> None:
        public = with_(CLUSTER, "apiServerAccessProfile", {"authorizedIPRanges": ["0.0.0.0/0"]})
        assert aks.api_server_access(tokens.CLUSTER, public, {}) == [
            "apiServerAccessProfile.authorizedIPRanges: found ['0.0.0.0/0'] (admitting 4,294,967,296 IPv4 addresses) on a public API server; enable the "
            "private cluster or list only your CI and office CIDRs."]
        ok = with_(CLUSTER, "apiServerAccessProfile", {"authorizedIPRanges": ["203.0.113.0/24"]})
        assert aks.api_server_access(tokens.CLUSTER, ok, {}) == []
        assert len(aks.api_server_access(tokens.CLUSTER, ok, {"requirePrivateCluster": True})) == 1

    def test_gpu_pool_compliant_in_dev(self) -> None:
        cfg = {"allowedGpuVmSizes": ["Standard_NC4as_T4_v3"], "maxGpuNodes": 2, "requireScaleToZero": True,
               "priority": "Spot"}
        rules = [aks.gpu_vm_sizes, aks.gpu_pool_autoscaling, aks.gpu_node_cap, aks.gpu_pool_priority, aks.gpu_pool_isolation,
                 aks.node_public_ip, aks.encryption_at_host]
        assert [m for r in rules for m in r(tokens.AGENT_POOL, GPU_POOL, cfg)] == []

    def test_gpu_pool_without_taint(self) -> None:
        assert aks.gpu_pool_isolation(tokens.AGENT_POOL, with_(GPU_POOL, "nodeTaints", []), {}) == [
            "nodeTaints: found []; GPU pools must carry 'sku=gpu:NoSchedule' so only GPU workloads (which tolerate "
            "it) land there."]

    def test_gpu_pool_size_and_count_caps(self) -> None:
        pool = with_(with_(GPU_POOL, "vmSize", "Standard_NC40ads_H100_v5"), "maxCount", 6.0)
        assert aks.gpu_vm_sizes(tokens.AGENT_POOL, pool, {"allowedGpuVmSizes": ["Standard_NC4as_T4_v3"]}) == [
            "vmSize: found 'Standard_NC40ads_H100_v5'; GPU pools here may use Standard_NC4as_T4_v3."]
        assert aks.gpu_node_cap(tokens.AGENT_POOL, pool, {"maxGpuNodes": 2}) == [
            "maxCount: found 6; at most 2 GPU nodes per pool here (raise maxGpuNodes in the policy config after a "
            "cost review)."]
        assert aks.gpu_pool_autoscaling(tokens.AGENT_POOL, pool, {"maxGpuNodes": 2}) == [], "the cap is its own policy"
        fixed = with_(with_(with_(GPU_POOL, "enableAutoScaling", False), "count", 12.0), "maxCount", 2.0)
        assert aks.gpu_node_cap(tokens.AGENT_POOL, fixed, {"maxGpuNodes": 8}) == [
            "count: found 12; at most 8 GPU nodes per pool here (raise maxGpuNodes in the policy config after a "
            "cost review)."], "without autoscaling the pool runs count nodes, whatever maxCount says"
        vmss = {"sku": {"name": "Standard_NC24ads_A100_v4", "capacity": 100.0}}
        assert aks.gpu_node_cap("azure-native:compute:VirtualMachineScaleSet", vmss, {"maxGpuNodes": 8}) == [
            "sku.capacity: found 100; at most 8 GPU nodes per pool here (raise maxGpuNodes in the policy config "
            "after a cost review)."]
        cpu_vmss = {"sku": {"name": "Standard_D2ds_v5", "capacity": 100.0}}
        assert aks.gpu_node_cap("azure-native:compute:VirtualMachineScaleSet", cpu_vmss, {"maxGpuNodes": 8}) == []

    def test_gpu_on_system_pool(self) -> None:
        cluster = with_(CLUSTER, "agentPoolProfiles.0.vmSize", "Standard_NC4as_T4_v3")
        assert aks.gpu_pool_isolation(tokens.CLUSTER, cluster, {}) == [
            "agentPoolProfiles[0].vmSize: found 'Standard_NC4as_T4_v3' on the System pool; run system pods on a CPU "
            "size and put GPUs in a User pool."]


class TestData:
    def test_registry_admin_user(self) -> None:
        assert data.registry_auth(tokens.REGISTRY, {"adminUserEnabled": True}, {}) == [
            "adminUserEnabled: found true; disable it and grant AcrPull to managed identities."]
        assert data.registry_auth(tokens.REGISTRY, {"adminUserEnabled": False}, {}) == []

    def test_vault_recovery_uses_config_minimum(self) -> None:
        vault = {"properties": {"enableRbacAuthorization": True, "enablePurgeProtection": True,
                                "softDeleteRetentionInDays": 30.0}}
        assert data.keyvault_recovery(tokens.VAULT, vault, {"minSoftDeleteRetentionDays": 30}) == []
        assert data.keyvault_recovery(tokens.VAULT, vault, {"minSoftDeleteRetentionDays": 90}) == [
            "properties.softDeleteRetentionInDays: found 30; keep at least 90 days."]

    def test_storage_public_blob_must_be_explicitly_false(self) -> None:
        assert data.storage_public_blob(tokens.STORAGE_ACCOUNT, {}, {}) == [
            "allowBlobPublicAccess: found unset; set it to false, model weights are not public."]
        assert data.storage_public_blob(tokens.STORAGE_ACCOUNT, {"allowBlobPublicAccess": False}, {}) == []

    def test_nsg_open_ollama_port(self) -> None:
        nsg = {"securityRules": [{"name": "ollama", "access": "Allow", "direction": "Inbound",
                                  "sourceAddressPrefix": "*", "destinationPortRange": "11000-12000"},
                                 {"name": "https", "access": "Allow", "direction": "Inbound",
                                  "sourceAddressPrefix": "Internet", "destinationPortRange": "443"}]}
        assert data.open_management_ports(tokens.NSG, nsg, {}) == [
            "securityRules[0].sourceAddressPrefix: rule 'ollama' allows ['*'] to ports 11434; restrict the source to "
            "known CIDRs or use Bastion / a private endpoint."]
        assert len(data.open_management_ports(tokens.NSG, nsg, {"extraPorts": [443]})) == 2


OWN_ACR: dict[str, Any] = {"stackRegistries": ["myacr.azurecr.io"]}
"""What the pack adds for a stack whose name_prefix is 'my' (its own registry; never '*.azurecr.io')."""


def pod(**spec: Any) -> dict[str, Any]:
    """A Deployment whose pod template is hardened, with ``spec`` overrides merged into the pod spec."""
    container = {
        "name": "vllm", "image": "myacr.azurecr.io/vllm/vllm-openai:v0.11.0@sha256:" + "a" * 64,
        "args": ["--model", "microsoft/Phi-4-mini-instruct", "--max-model-len", "16384",
                 "--enable-auto-tool-choice", "--tool-call-parser", "phi4_mini_json"],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "1Gi", "nvidia.com/gpu": 1.0},
                      "limits": {"cpu": "8", "memory": "24Gi", "ephemeral-storage": "2Gi", "nvidia.com/gpu": 1.0}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000.0}, "periodSeconds": 5.0},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8000.0}, "periodSeconds": 30.0},
        "startupProbe": {"httpGet": {"path": "/health", "port": 8000.0}, "failureThreshold": 60.0},
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }
    pod_spec = {
        "containers": [container], "serviceAccountName": "vllm", "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.azure.com/agentpool": "gpu"},
        "topologySpreadConstraints": [{"maxSkew": 1.0, "topologyKey": "topology.kubernetes.io/zone"}],
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}],
        **spec,
    }
    labels = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/component": "inference"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "vllm-phi", "namespace": "inference", "labels": labels},
            "spec": {"replicas": 2.0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}


WORKLOAD_RULES = [workloads.pss_baseline, workloads.no_privilege_escalation, workloads.run_as_non_root,
                  workloads.drop_capabilities, workloads.seccomp, workloads.volume_types, workloads.read_only_root,
                  workloads.resources, workloads.image_provenance, workloads.image_digest, workloads.probes,
                  workloads.service_account, workloads.namespaces, workloads.replicas_spread,
                  workloads.no_secrets_in_env, workloads.stable_api, workloads.gpu_scheduling,
                  workloads.non_gpu_tolerations, serving.tool_call_parser, serving.quantization_flag,
                  serving.cuda_image_on_cpu, serving.ollama_metrics, serving.trust_remote_code, serving.dev_mode,
                  serving.log_stats, serving.bounded_context, serving.shared_memory]
C0 = "spec.template.spec.containers[0]"


class TestWorkloads:
    def test_hardened_gpu_workload_passes_every_rule(self) -> None:
        assert [m for r in WORKLOAD_RULES for m in r(DEPLOYMENT, pod(), OWN_ACR)] == []

    def test_privileged_root_container(self) -> None:
        props = with_(pod(), "spec.template.spec.containers.0.securityContext",
                      {"privileged": True, "runAsUser": 0.0})
        assert workloads.pss_baseline(DEPLOYMENT, props, {}) == [
            f"{C0}.securityContext.privileged: found true; remove it (GPU access comes from the device plugin, not "
            "privilege)."]
        assert f"{C0}.securityContext.runAsUser: found 0; do not run as root." in \
            workloads.run_as_non_root(DEPLOYMENT, props, {})

    def test_host_network_and_host_path(self) -> None:
        props = pod(hostNetwork=True, volumes=[{"name": "models", "hostPath": {"path": "/models"}}])
        assert workloads.pss_baseline(DEPLOYMENT, props, {}) == [
            "spec.template.spec.hostNetwork: found true; pods must not share the node's namespaces."]
        assert workloads.volume_types(DEPLOYMENT, props, {}) == [
            "spec.template.spec.volumes[0]: found hostPath volume 'models'; use a PVC, emptyDir or CSI volume "
            "(hostPath needs a written exemption)."]

    def test_latest_tag_and_unknown_registry(self) -> None:
        props = with_(pod(), "spec.template.spec.containers.0.image", "quay.io/evil/vllm:latest")
        assert workloads.image_provenance(DEPLOYMENT, props, {}) == [
            f"{C0}.image: found registry 'quay.io/evil/vllm'; pull from docker.io/vllm, docker.io/ollama, "
            "docker.io/library/nginx, ghcr.io/ggml-org, mcr.microsoft.com, nvcr.io/nvidia (or add the registry to allowedRegistries).",
            f"{C0}.image: found 'quay.io/evil/vllm:latest' (tag latest); pin a version tag and preferably a @sha256 "
            "digest."]

    def test_public_images_allowed_by_default(self) -> None:
        for image in ("vllm/vllm-openai:v0.11.0", "ollama/ollama:0.12.3", "mcr.microsoft.com/azurelinux/base:3.0"):
            props = with_(pod(), "spec.template.spec.containers.0.image", image)
            assert workloads.image_provenance(DEPLOYMENT, props, {}) == []

    def test_secret_env_value_is_reported_without_the_value(self) -> None:
        env = [{"name": "HF_TOKEN", "value": "hf_abcdefghijklmnopqrstuvwxyz012345"},
               {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
        props = with_(pod(), "spec.template.spec.containers.0.env", env)
        msgs = workloads.no_secrets_in_env(DEPLOYMENT, props, {})
        assert msgs == [f"{C0}.env[0].value: found a literal value for 'HF_TOKEN' (value not shown); move it to a "
                        "Secret (valueFrom.secretKeyRef) or a Key Vault CSI mount."]
        assert "hf_abc" not in msgs[0]

    def test_gpu_pod_without_toleration(self) -> None:
        assert workloads.gpu_scheduling(DEPLOYMENT, pod(tolerations=[]), {}) == [
            "spec.template.spec.tolerations: found no toleration for 'sku=gpu:NoSchedule'; GPU pods must tolerate "
            "the GPU pool taint."]

    def test_default_namespace_and_bare_pod(self) -> None:
        props = with_(pod(), "metadata.namespace", None)
        assert workloads.namespaces(DEPLOYMENT, props, {}) == [
            "metadata.namespace: found unset; deploy into a dedicated namespace, never 'default'."]
        assert workloads.stable_api("kubernetes:core/v1:Pod", {}, {}) == [
            "kind: found a bare Pod; wrap it in a Deployment, StatefulSet or Job so it is rescheduled."]
        assert workloads.stable_api("kubernetes:keda.sh/v1alpha1:ScaledObject", {}, {}) == []
        assert len(workloads.stable_api("kubernetes:networking.k8s.io/v1beta1:Ingress", {}, {})) == 1

    def test_public_load_balancer(self) -> None:
        svc = {"metadata": {"name": "vllm"}, "spec": {"type": "LoadBalancer"}}
        assert workloads.service_exposure("kubernetes:core/v1:Service", svc, {}) == [
            "spec.type: found a public 'LoadBalancer'; annotate it "
            "service.beta.kubernetes.io/azure-load-balancer-internal: 'true' or use the gateway."]


class TestServingLints:
    def args(self, *args: str) -> dict[str, Any]:
        return with_(pod(), "spec.template.spec.containers.0.args", list(args))

    def test_auto_tool_choice_without_parser_d1(self) -> None:
        props = self.args("--model", "microsoft/Phi-4-mini-instruct", "--enable-auto-tool-choice")
        assert serving.tool_call_parser(DEPLOYMENT, props, {}) == [
            f"{C0}.args: found --enable-auto-tool-choice without --tool-call-parser; vLLM answers tool calls with "
            "HTTP 400. Add the family's parser (Phi-4-mini 'phi4_mini_json', Qwen3 'hermes', Gemma 3 'pythonic')."]

    def test_awq_on_bf16_repo_d2(self) -> None:
        props = self.args("--model", "microsoft/Phi-4-mini-instruct", "--quantization=awq")
        assert serving.quantization_flag(DEPLOYMENT, props, {}) == [
            f"{C0}.args: found --quantization awq for 'microsoft/Phi-4-mini-instruct', which is not an AWQ "
            "checkpoint; serve a pre-quantized repo and drop the flag (vLLM detects quantization from the "
            "checkpoint config)."]
        ok = self.args("--model", "Qwen/Qwen3-8B-AWQ", "--quantization", "awq")
        assert serving.quantization_flag(DEPLOYMENT, ok, {}) == []

    def test_cuda_image_without_gpu_d3(self) -> None:
        props = with_(pod(), "spec.template.spec.containers.0.resources", {"limits": {"cpu": "8"}})
        props = with_(props, "spec.template.spec.containers.0.image", "vllm/vllm-openai:v0.11.0")
        assert serving.cuda_image_on_cpu(DEPLOYMENT, props, {}) == [
            f"{C0}.image: found 'vllm/vllm-openai:v0.11.0' without resources.limits['nvidia.com/gpu']; that image is "
            "CUDA-only. Give it a GPU, or serve on CPU with Ollama or ONNX Runtime GenAI."]

    def test_servicemonitor_on_ollama_d4(self) -> None:
        sm = {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "ollama"}},
                       "endpoints": [{"port": "http", "path": "/metrics"}]}}
        assert serving.ollama_metrics("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", sm, {}) == [
            "spec.endpoints[0]: found a scrape of Ollama (port 'http'); Ollama serves no /metrics. Scrape the "
            "gateway or a sidecar exporter instead."]

    def test_ollama_probe_and_env_d5_d7(self) -> None:
        c = {"name": "ollama", "image": "ollama/ollama:0.12.3",
             "livenessProbe": {"exec": {"command": ["curl", "-f", "http://localhost:11434/api/health"]}},
             "env": [{"name": "OLLAMA_NUM_GPU", "value": "1"}, {"name": "OLLAMA_MAX_VRAM", "value": "8G"},
                     {"name": "OLLAMA_NUM_PARALLEL", "value": "2"}]}
        props = pod(containers=[c])
        assert serving.ollama_probes(DEPLOYMENT, props, {}) == [
            f"{C0}.livenessProbe: found an exec curl; use httpGet on '/api/version' (the image has no curl and no "
            "/api/health route)."]
        assert serving.ollama_env(DEPLOYMENT, props, {}) == [
            f"{C0}.env[0].name: found 'OLLAMA_NUM_GPU', which Ollama does not read; use OLLAMA_NUM_PARALLEL / "
            "OLLAMA_CONTEXT_LENGTH / Modelfile 'PARAMETER num_ctx' instead.",
            f"{C0}.env[1].value: found OLLAMA_MAX_VRAM='8G'; give bytes, e.g. '8589934592'."]

    def test_foundry_local_container_d8(self) -> None:
        props = pod(containers=[{"name": "fl", "image": "microsoft/foundry-local:latest"}])
        assert len(serving.no_foundry_local_container(DEPLOYMENT, props, {})) == 1

    def test_gpu_utilization_autoscaling_d11(self) -> None:
        hpa = {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "vllm-phi"},
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]}}
        assert serving.autoscaling_metric(tokens.HPA, hpa, {}) == [
            "spec.metrics[0]: found scaling on 'cpu' utilization; GPU utilization sits near 100% while batching. "
            "Scale on vllm:num_requests_waiting (queue depth)."]
        keda = {"spec": {"scaleTargetRef": {"name": "vllm-phi"}, "triggers": [
            {"type": "prometheus", "metadata": {"query": "sum(vllm:num_requests_waiting)"}}]}}
        assert serving.autoscaling_metric(tokens.SCALED_OBJECT, keda, {}) == []

    def test_trust_remote_code_dev_mode_log_stats(self) -> None:
        props = self.args("--model", "org/custom", "--trust-remote-code", "--disable-log-stats", "--max-model-len",
                          "4096")
        props = with_(props, "spec.template.spec.containers.0.env", [{"name": "VLLM_SERVER_DEV_MODE", "value": "1"}])
        assert len(serving.trust_remote_code(DEPLOYMENT, props, {})) == 1
        assert serving.trust_remote_code(DEPLOYMENT, props, {"allowTrustRemoteCode": ["org/custom"]}) == []
        assert serving.dev_mode(DEPLOYMENT, props, {}) == [
            f"{C0}.env: found VLLM_SERVER_DEV_MODE; remove it, it exposes development endpoints."]
        assert serving.log_stats(DEPLOYMENT, props, {}) == [
            f"{C0}.args: found --disable-log-stats; remove it or the vllm:* metrics disappear."]


class TestEdgeMonitoringCost:
    def edge_pod(self) -> dict[str, Any]:
        props = pod()
        props["spec"]["template"]["metadata"]["labels"].update({"slm.io/tier": "edge",
                                                                "slm.io/device-class": "gw"})
        props["spec"]["template"]["metadata"]["annotations"] = {"slm.io/model-sha256": "b" * 64}
        props["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
        return props

    def test_edge_pinned_and_within_envelope(self) -> None:
        cfg = {"deviceClasses": {"gw": {"memoryGiB": 32}}}
        assert edge.artifact_pinned(DEPLOYMENT, self.edge_pod(), OWN_ACR) == []
        assert edge.device_envelope(DEPLOYMENT, self.edge_pod(), cfg) == []

    def test_edge_over_memory_and_always_pull(self) -> None:
        props = with_(self.edge_pod(), "spec.template.spec.containers.0.imagePullPolicy", "Always")
        assert edge.artifact_pinned(DEPLOYMENT, props, OWN_ACR) == [
            f"{C0}.imagePullPolicy: found 'Always'; use 'IfNotPresent' so devices start offline (documented "
            "deviation from CKV_K8S_15)."]
        assert edge.device_envelope(DEPLOYMENT, props, {"deviceClasses": {"gw": {"memoryGiB": 16}}}) == [
            "spec.template.spec.containers[*].resources.limits.memory: found 24.0 GiB in total; device class 'gw' "
            "offers 16 GiB. Use a smaller quantization or context."]

    def test_an_onnx_revision_pinned_by_git_commit_counts_as_the_model_pin(self) -> None:
        props = self.edge_pod()
        props["spec"]["template"]["metadata"]["annotations"] = {
            "slm.io/model-version": "microsoft/Phi-4-mini-instruct-onnx@" + "f" * 40 + "/cpu_and_mobile/cpu-int4"}
        assert edge.artifact_pinned(DEPLOYMENT, props, OWN_ACR) == []
        for moving in ("microsoft/Phi-4-mini-instruct-onnx@main/cpu", "phi4-mini:3.8b-q4_K_M", "x@" + "f" * 39):
            props["spec"]["template"]["metadata"]["annotations"] = {"slm.io/model-version": moving}
            assert edge.artifact_pinned(DEPLOYMENT, props, OWN_ACR) == [
                "spec.template.spec: found no model sha256; annotate the pod template 'slm.io/model-sha256' with the "
                "model artifact digest so devices verify what they load."], moving

    def test_an_edge_fleet_declaring_its_metrics_endpoint_is_scraped_by_its_own_cluster(self) -> None:
        no_dcgm = {"requireDcgm": False}  # the baseline pod has a GPU; the DCGM check is not under test
        scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
        props = self.edge_pod()
        props["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "inference"
        props["spec"]["template"]["metadata"]["annotations"] |= scrape
        assert stack.inference_scraped([res(DEPLOYMENT, "edge", props)], no_dcgm) == []
        bare = with_(props, "spec.template.metadata.annotations", {"slm.io/model-sha256": "b" * 64})
        assert [f.message.split(";")[0] for f in stack.inference_scraped([res(DEPLOYMENT, "edge", bare)], no_dcgm)] == [
            "metrics: found no ServiceMonitor or PodMonitor scraping 'edge'"]
        central = with_(props, "spec.template.metadata.labels", {"app.kubernetes.io/component": "inference"})
        assert len(stack.inference_scraped([res(DEPLOYMENT, "central", central)], no_dcgm)) == 1, \
            "annotations count only for edge fleets; the stack's own workloads need a monitor"

    def test_iot_hub(self) -> None:
        hub = {"properties": {"disableLocalAuth": True, "minTlsVersion": "1.2", "publicNetworkAccess": "Enabled"}}
        assert edge.iot_hub(tokens.IOT_HUB, hub, {}) == []
        assert edge.iot_hub(tokens.IOT_HUB, hub, {"requirePrivate": True}) == [
            "properties.publicNetworkAccess: found 'Enabled'; set 'Disabled' and connect devices through a private "
            "endpoint."]

    def test_key_vault_secret_needs_an_expiry_under_its_wire_name(self) -> None:
        secret = {"properties": {"contentType": "text/plain", "value": "x",
                                 "attributes": {"enabled": True, "expires": 1825027200.0}}}
        assert data.keyvault_secret_metadata(tokens.VAULT_SECRET, secret, {}) == []
        del secret["properties"]["attributes"]["expires"]
        assert data.keyvault_secret_metadata(tokens.VAULT_SECRET, secret, {}) == [
            "properties.attributes.expires: found unset; give the secret an expiry (epoch seconds) and rotate it."]

    def test_grafana_password_literal_is_not_echoed(self) -> None:
        release = {"chart": "kube-prometheus-stack", "values": {"grafana": {"adminPassword": "hunter2hunter2"}}}
        msgs = monitoring.private_dashboards("kubernetes:helm.sh/v3:Release", release, {})
        assert msgs == ["values.grafana.adminPassword: found a literal password (not shown); reference an existing "
                        "Secret (e.g. grafana.admin.existingSecret)."]

    def test_grafana_secret_references_are_not_passwords(self) -> None:
        release = {"chart": "kube-prometheus-stack", "values": {"grafana": {"admin": {
            "existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}}}}
        assert monitoring.private_dashboards("kubernetes:helm.sh/v3:Release", release, {}) == []

    def test_required_tags(self) -> None:
        props = {"location": "swedencentral", "tags": {"environment": "dev", "owner": "me"}}
        assert cost.required_tags("azure-native:keyvault:Vault", props, {}) == [
            "tags: found no costCenter, workload; pass the stack's tags (settings.tags) to this resource."]
        assert cost.required_tags("azure-native:authorization:RoleAssignment", {}, {}) == []


def res(type_: str, name: str, props: dict[str, Any], **kw: Any) -> StackResource:
    return StackResource(type_, name, f"urn:pulumi:dev::p::{type_}::{name}", props, **kw)


class TestStackRules:
    def test_private_account_needs_a_private_endpoint(self) -> None:
        acct = res(tokens.FOUNDRY_ACCOUNT, "ai", {"accountName": "slmai", "properties": {"publicNetworkAccess": "Disabled"}})
        msgs = stack.private_endpoints([acct], {}, target_type=tokens.FOUNDRY_ACCOUNT, group_id="account",
                                       id_segment="accounts")
        assert [f.message for f in msgs] == [
            "privateEndpoint: found none for 'ai'; add an azure-native:network:PrivateEndpoint whose "
            "privateLinkServiceConnections[*].privateLinkServiceId is its id and groupIds contains 'account'."]
        pe = res(tokens.PRIVATE_ENDPOINT, "ai-pe", {"privateLinkServiceConnections": [{
            "privateLinkServiceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                                    "accounts/slmai", "groupIds": ["account"]}]})
        assert stack.private_endpoints([acct, pe], {}, target_type=tokens.FOUNDRY_ACCOUNT, group_id="account",
                                       id_segment="accounts") == []

    def test_workload_needs_network_policy_and_scrape(self) -> None:
        w = res(DEPLOYMENT, "vllm", pod())
        findings = stack.network_policy_coverage([w], {})
        assert [f.message for f in findings] == [
            "spec.template.metadata.labels: found no NetworkPolicy in namespace 'inference' selecting 'vllm'; add "
            "one that allows only its callers (the gateway, Prometheus).",
            "namespace 'inference': found no default-deny Ingress NetworkPolicy; add one with an empty podSelector "
            "and policyTypes [Ingress]."]
        deny = res(tokens.NETWORK_POLICY, "deny", {"metadata": {"namespace": "inference"},
                                                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
        allow = res(tokens.NETWORK_POLICY, "allow", {"metadata": {"namespace": "inference"}, "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}}, "policyTypes": ["Ingress"],
            "ingress": [{}]}})
        assert stack.network_policy_coverage([w, deny, allow], {}) == []
        pm = res("kubernetes:monitoring.coreos.com/v1:PodMonitor", "pm", {"metadata": {"namespace": "inference"}, "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/component": "inference"}}}})
        dcgm = res("kubernetes:apps/v1:DaemonSet", "dcgm", {"spec": {"template": {"spec": {"containers": [
            {"name": "d", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3"}]}}}})
        assert next(f.message for f in stack.inference_scraped([w], {})).startswith(
            "metrics: found no ServiceMonitor or PodMonitor scraping 'vllm'")
        assert stack.inference_scraped([w, pm, dcgm], {}) == []
        managed = res("kubernetes:azmonitoring.coreos.com/v1:PodMonitor", "pm", pm.props)
        assert stack.inference_scraped([w, managed, dcgm], {}) == [], "Azure Managed Prometheus monitors count"

    def test_budget_names_the_biggest_pool_and_belongs_to_the_stack(self) -> None:
        pool = res(tokens.AGENT_POOL, "gpu", {"vmSize": "Standard_NC24ads_A100_v4", "enableAutoScaling": True,
                                           "maxCount": 4.0})
        findings = stack.monthly_budget([pool], {"monthlyBudgetUsd": 1500})
        assert [f.message for f in findings] == [
            "estimated monthly cost: found $10,725 (upper bound: every pool and scale set at its maximum count, "
            "provisioned throughput at its PTUs) against a budget of $1,500: gpu (Standard_NC24ads_A100_v4 x 4) "
            "$10,725. Lower maxCount or PTUs, use Spot or smaller GPU sizes, or raise budget_usd_per_month after a "
            "cost review. Spot is priced at 30% of list."]
        assert findings[0].resource is None  # a sum over the stack: no one resource's exemption may silence it
        assert stack.monthly_budget([pool], {"monthlyBudgetUsd": 20000}) == []
        assert len(stack.monthly_budget([pool], {"monthlyBudgetUsd": 20000}, stack_budget=1000)) == 1

    def test_hpa_target_must_exist(self) -> None:
        hpa = res(tokens.HPA, "hpa", {"metadata": {"namespace": "inference"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "nope"}, "minReplicas": 1.0, "maxReplicas": 2.0}})
        assert [f.message for f in stack.autoscaler_bounds([hpa], {})] == [
            "spec.scaleTargetRef: found 'nope', which is not a workload of this stack in the same namespace; fix the "
            "name or kind."]

    def test_diagnostic_settings_categories(self) -> None:
        vault = res(tokens.VAULT, "kv", {"vaultName": "slmkv"})
        ds = res("azure-native:insights:DiagnosticSetting", "kv-diag", {
            "resourceUri": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/slmkv",
            "workspaceId": "/w", "logs": [{"category": "AzurePolicyEvaluationDetails", "enabled": True}]})
        assert [f.message for f in stack.diagnostic_settings([vault, ds], {})] == [
            "logs: found ['AzurePolicyEvaluationDetails'] for 'kv'; enable AuditEvent (or the 'audit' category "
            "group)."]
        ok = res("azure-native:insights:DiagnosticSetting", "kv-diag", {
            "resourceUri": "x", "workspaceId": "/w", "logs": [{"categoryGroup": "audit", "enabled": True}]},
            property_dependencies={"resourceUri": (vault.urn,)})
        assert stack.diagnostic_settings([vault, ok], {}) == []


@pytest.mark.parametrize("quantity", [("8Gi", 8 * 2**30), ("512Mi", 512 * 2**20), ("1G", 1e9), ("100", 100.0)])
def test_quantity_bytes(quantity: tuple[str, float]) -> None:
    assert edge.quantity_bytes(quantity[0]) == quantity[1]


def test_another_tenants_acr_is_not_trusted() -> None:
    """Issue 12.5: '*.azurecr.io' accepted any tenant's registry; only the stack's own (and listed ones) are."""
    props = with_(pod(), "spec.template.spec.containers.0.image", "evilcorp.azurecr.io/vllm/vllm-openai:v0.11.0")
    assert any("found registry 'evilcorp.azurecr.io/vllm/vllm-openai'" in m
               for m in workloads.image_provenance(DEPLOYMENT, props, OWN_ACR))
    own = with_(pod(), "spec.template.spec.containers.0.image", "myacr.azurecr.io/vllm/vllm-openai:v0.11.0")
    assert workloads.image_provenance(DEPLOYMENT, own, OWN_ACR) == []


def test_the_pack_derives_the_stack_registry_from_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from policies.pack import stack_registries

    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"slm-platform:settings": json.dumps({"name_prefix": "slmprod"})}))
    assert stack_registries() == ["slmprodacr.azurecr.io"]
    monkeypatch.setenv("PULUMI_CONFIG", "{}")
    assert stack_registries() == []


def test_a_vm_scale_set_is_priced_like_a_pool() -> None:
    """Issue 12.10: compute the pack allows must be priced, or the budget policy cannot see it."""
    from policies.rules import cost

    vmss = {"sku": {"name": "Standard_NC24ads_A100_v4", "capacity": 100}, "virtualMachineProfile": {}}
    (line,) = cost.estimate([("azure-native:compute:VirtualMachineScaleSet", "farm", vmss)])
    pool = cost.estimate([("azure-native:containerservice:AgentPool", "p", {
        "vmSize": "Standard_NC24ads_A100_v4", "count": 100})])[0]
    assert line.usd == pool.usd > 200_000
    spot = cost.estimate([("azure-native:compute:VirtualMachineScaleSet", "farm", {
        **vmss, "virtualMachineProfile": {"priority": "Spot"}})])[0]
    assert spot.usd < line.usd


def test_every_compute_type_is_priced_or_reported() -> None:
    """Issue 12.10: ACI, provisioned throughput and VMs are priced; token-priced Foundry is $0 and says so;
    compute the table cannot price is a line marked unpriced (a "cannot price" finding), never a silent $0."""
    from policies.rules import cost

    aci = {"osType": "Linux", "containers": [
        {"name": "a", "resources": {"requests": {"cpu": 2.0, "memoryInGB": 8.0, "gpu": {"count": 1.0, "sku": "K80"}}}},
        {"name": "b", "resources": {"requests": {"cpu": 1.0, "memoryInGB": 2.0}}}]}
    (line,) = cost.estimate([(tokens.CONTAINER_GROUP, "aci", aci)])
    assert line.usd == round((3 * 0.0466 + 10 * 0.00511 + 0.90) * 730, 2)  # Sweden Central vCPU and GB rates
    assert line.unpriced is None
    assert line.what == "ACI 3 vCPU, 10 GB, 1 K80 GPU"
    spot = cost.estimate([(tokens.CONTAINER_GROUP, "aci", {**aci, "priority": "Spot"})])[0]
    assert spot.usd == round(line.usd * 0.3, 2)
    windows = cost.estimate([(tokens.CONTAINER_GROUP, "aci", {**aci, "osType": "Windows"})])[0]
    assert windows.usd == 0
    assert "osType 'Windows'" in str(windows.unpriced)
    no_requests = cost.estimate([(tokens.CONTAINER_GROUP, "aci", {"containers": [{"name": "a", "resources": {}}]})])[0]
    assert no_requests.unpriced == "containers[0].resources.requests has no cpu and memoryInGB"

    def foundry(sku: str, capacity: float) -> cost.CostLine:
        return cost.estimate([(tokens.FOUNDRY_DEPLOYMENT, "d", {"sku": {"name": sku, "capacity": capacity}})])[0]

    assert foundry("GlobalProvisionedManaged", 100).usd == 73_000
    assert foundry("DataZoneProvisionedManaged", 100).usd == 80_300
    assert foundry("ProvisionedManaged", 100).usd == 160_600  # Regional: $2.20 a PTU-hour in Sweden Central
    standard = foundry("GlobalStandard", 500)
    assert (standard.usd, standard.unpriced) == (0, None)
    assert standard.what == "GlobalStandard x 500 (token-priced: $0 fixed, billed per token)"
    assert foundry("PremiumFuture", 1).unpriced is not None

    vm = cost.estimate([(tokens.VM, "vm", {"hardwareProfile": {"vmSize": "Standard_NC24ads_A100_v4"}})])[0]
    assert vm.usd == round(3.673 * 730, 2)
    (app,) = cost.estimate([("azure-native:app:ContainerApp", "app", {})])
    assert app.unpriced is not None
    (tier,) = list(cost.estimate([(tokens.CLUSTER, "aks", {"sku": {"tier": "Enterprise"}})]))
    assert tier.unpriced == "sku.tier 'Enterprise' has no price in catalog.AKS_TIER_USD_PER_HOUR"
    assert cost.estimate([("azure-native:storage:StorageAccount", "st", {})]) == []


def test_the_budget_reports_what_it_cannot_price_and_warns_from_80_percent() -> None:
    pool = res(tokens.AGENT_POOL, "gpu", {"vmSize": "Standard_NC24ads_A100_v4", "enableAutoScaling": True,
                                       "maxCount": 4.0})  # $10,725.16
    odd = res("azure-native:compute:VirtualMachineScaleSet", "odd", {"sku": {"name": "Standard_X1", "capacity": 1.0}})
    findings = stack.monthly_budget([pool, odd], {"monthlyBudgetUsd": 20000})
    assert [(f.resource.name if f.resource else None, f.message.split(":")[0:2]) for f in findings] == [
        ("odd", ["cost", " cannot price odd (Standard_X1 x 1)"])]
    assert stack.budget_headroom([pool], {"monthlyBudgetUsd": 13_500}) == []  # 79%
    (warning,) = stack.budget_headroom([pool], {"monthlyBudgetUsd": 13_400})  # 80%
    assert warning.resource is None  # the stack's sum, like the budget
    assert warning.message.startswith("estimated monthly cost: found $10,725, 80% of the budget of $13,400")
    assert len(stack.budget_headroom([pool], {"monthlyBudgetUsd": 5_000})) == 1, "over the budget it still warns"
    assert stack.budget_headroom([pool], {"monthlyBudgetUsd": 20_000, "warnAtPercent": 50}) != []
    assert stack.budget_headroom([pool], {}) == []
