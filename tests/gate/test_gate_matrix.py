"""The policy matrix: one violating resource per policy, driven through the REAL pack over gRPC.

``matrix_program`` declares, with the real ``pulumi_azure_native`` / ``pulumi_kubernetes`` classes,
compliant ``ok-*`` fixtures and one deliberately violating ``bad-*`` resource per policy (each
starting from the compliant baseline with one setting broken). It is recorded once and gated once
under the prod config (module-scoped fixtures, one pack subprocess). Each policy then has to report
its exact message on its intended resource, the ``ok-*`` fixtures must stay clean, and the set of
policies that fired must be every policy of ``SPECS`` except ``NOT_FIRED`` below.

The compliant counterpart for whole stacks (every shipped stack passes its tier's gate with zero
mandatory violations) is ``tests/gate/test_gate_stacks.py::test_shipped_stack_passes_its_tier_gate``;
it is not repeated here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s
import pytest
from pulumi_azure_native import (
    authorization,
    cognitiveservices,
    compute,
    containerinstance,
    containerregistry,
    containerservice,
    dashboard,
    iothub,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    privatedns,
    storage,
)

from policies.pack import SPECS, environment_config
from policies.rules.memory_fit import ModelShape, shape_annotations
from policies.rules.plan_graph import ROLE_IDS
from policies.rules.workloads import DEFAULT_REGISTRIES
from slmctl.gate import GateResult, Violation, run_gate
from slmctl.recorder import Recording, record

TAGS = {"environment": "prod", "owner": "ml@contoso.example", "costCenter": "cc-4711", "workload": "slm-platform"}
RG = "rg-matrix"
LOC = "swedencentral"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-matrix/providers"
WORKSPACE_ID = f"{SUB}/Microsoft.OperationalInsights/workspaces/matrix"
PE_SUBNET = f"{SUB}/Microsoft.Network/virtualNetworks/vnet/subnets/pe"
DIGEST = "@sha256:" + "a" * 64
APP_IMAGE = "mcr.microsoft.com/azurelinux/base/core:3.0" + DIGEST
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0" + DIGEST
OLLAMA_IMAGE = "ollama/ollama:0.12.6" + DIGEST
EDGE_IMAGE = "okedgeacr.azurecr.io/slm/onnx-genai-server:0.1.0" + DIGEST
FAKE_HF_TOKEN = "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01"
"""An obviously fake token in the Hugging Face shape (the rule matches shapes, never echoes them)."""
NS = "inference"
GPU_TAINT = "sku=gpu:NoSchedule"
PREVIEW_ACCOUNT = "azure-native:cognitiveservices/v20250401preview:Account"

# --------------------------------------------------------------------------- compliant baselines


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value if _holds_output(value) else copy.deepcopy(value)
    return out


def _holds_output(value: Any) -> bool:
    """Outputs (ids of other fixtures) cannot be deep-copied; they are immutable, so they are shared."""
    if isinstance(value, pulumi.Output):
        return True
    if isinstance(value, dict):
        return any(_holds_output(v) for v in value.values())
    return isinstance(value, list) and any(_holds_output(v) for v in value)


ACCOUNT_PROPS: dict[str, Any] = {
    "disable_local_auth": True, "custom_sub_domain_name": "matrix-ai", "public_network_access": "Disabled",
    "restrict_outbound_network_access": True, "allowed_fqdn_list": ["matrixweights.blob.core.windows.net"],
    "encryption": {"key_source": "Microsoft.KeyVault",
                   "key_vault_properties": {"key_vault_uri": "https://matrixkv.vault.azure.net/", "key_name": "cmk"}},
}


def account(name: str, *, kind: str = "AIServices", identity: bool = True, **props: Any) -> cognitiveservices.Account:
    return cognitiveservices.Account(
        name, account_name=name, kind=kind, resource_group_name=RG, location=LOC, tags=TAGS, sku={"name": "S0"},
        identity={"type": "SystemAssigned"} if identity else None,
        properties=_merge({**ACCOUNT_PROPS, "custom_sub_domain_name": name}, props))


def foundry_deployment(name: str, **props: Any) -> cognitiveservices.Deployment:
    base = {"model": {"format": "Microsoft", "name": "Phi-4-mini-instruct", "version": "1"},
            "version_upgrade_option": "NoAutoUpgrade", "rai_policy_name": "Microsoft.DefaultV2"}
    sku = props.pop("sku", {"name": "GlobalStandard", "capacity": 10})
    return cognitiveservices.Deployment(name, account_name="ok-foundry", resource_group_name=RG,
                                        properties=_merge(base, props), sku=sku)


SYSTEM_POOL: dict[str, Any] = {
    "name": "system", "mode": "System", "vm_size": "Standard_D4ds_v5", "count": 3,
    "enable_encryption_at_host": True, "node_taints": ["CriticalAddonsOnly=true:NoSchedule"],
    "availability_zones": ["1", "2", "3"],
}
CLUSTER: dict[str, Any] = {
    "aad_profile": {"managed": True, "admin_group_object_ids": ["5b1a0d2e-0000-4000-8000-000000000001"],
                    "enable_azure_rbac": True},
    "enable_rbac": True, "disable_local_accounts": True,
    "api_server_access_profile": {"enable_private_cluster": True},
    "network_profile": {"network_plugin": "azure", "network_policy": "cilium"},
    "identity": {"type": "SystemAssigned"}, "oidc_issuer_profile": {"enabled": True},
    "security_profile": {"workload_identity": {"enabled": True},
                         "defender": {"security_monitoring": {"enabled": True},
                                      "log_analytics_workspace_resource_id": WORKSPACE_ID}},
    "addon_profiles": {"azurepolicy": {"enabled": True},
                       "azureKeyvaultSecretsProvider": {"enabled": True, "config": {"enableSecretRotation": "true"}}},
    "auto_upgrade_profile": {"upgrade_channel": "stable", "node_os_upgrade_channel": "NodeImage"},
    "sku": {"name": "Base", "tier": "Standard"},
    "azure_monitor_profile": {"metrics": {"enabled": True}},
}


def cluster(name: str, *, pool: dict[str, Any] | None = None, **override: Any) -> containerservice.ManagedCluster:
    args = _merge(CLUSTER, override)
    return containerservice.ManagedCluster(
        name, resource_name_=name, resource_group_name=RG, location=LOC, tags=TAGS, dns_prefix=name,
        agent_pool_profiles=[_merge(SYSTEM_POOL, pool or {})], **args)


GPU_POOL: dict[str, Any] = {
    "vm_size": "Standard_NC24ads_A100_v4", "mode": "User", "enable_auto_scaling": True, "min_count": 0,
    "max_count": 2, "node_taints": [GPU_TAINT], "node_labels": {"accelerator": "nvidia"},
    "enable_encryption_at_host": True, "scale_set_priority": "Regular",
}


def gpu_pool(name: str, **override: Any) -> containerservice.AgentPool:
    return containerservice.AgentPool(name, agent_pool_name=name.replace("-", "")[:12], resource_group_name=RG,
                                      resource_name_="ok-aks", **_merge(GPU_POOL, override))


REGISTRY: dict[str, Any] = {
    "sku": {"name": "Premium"}, "admin_user_enabled": False, "anonymous_pull_enabled": False,
    "public_network_access": "Disabled",
    "policies": {"retention_policy": {"status": "enabled", "days": 7}, "quarantine_policy": {"status": "enabled"},
                 "trust_policy": {"status": "enabled", "type": "Notary"}, "export_policy": {"status": "disabled"}},
}


def registry(name: str, **override: Any) -> containerregistry.Registry:
    return containerregistry.Registry(name, registry_name=name.replace("-", ""), resource_group_name=RG,
                                      location=LOC, tags=TAGS, **_merge(REGISTRY, override))


VAULT_PROPS: dict[str, Any] = {
    "tenant_id": "11111111-1111-1111-1111-111111111111", "sku": {"family": "A", "name": "standard"},
    "enable_rbac_authorization": True, "enable_purge_protection": True, "soft_delete_retention_in_days": 90,
    "public_network_access": "Disabled", "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
}


def vault(name: str, *, vault_name: str | None = None, **props: Any) -> keyvault.Vault:
    return keyvault.Vault(name, vault_name=vault_name or name, resource_group_name=RG, location=LOC, tags=TAGS,
                          properties=_merge(VAULT_PROPS, props))


STORAGE: dict[str, Any] = {
    "kind": "StorageV2", "sku": {"name": "Standard_ZRS"}, "enable_https_traffic_only": True,
    "minimum_tls_version": "TLS1_2", "allow_blob_public_access": False, "allow_shared_key_access": False,
    "public_network_access": "Disabled",
}


def storage_account(name: str, **override: Any) -> storage.StorageAccount:
    return storage.StorageAccount(name, account_name=name.replace("-", ""), resource_group_name=RG, location=LOC,
                                  tags=TAGS, **_merge(STORAGE, override))


ZONES = {"account": ("privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
                     "privatelink.services.ai.azure.com"), "vault": ("privatelink.vaultcore.azure.net",),
         "registry": ("privatelink.azurecr.io",), "blob": ("privatelink.blob.core.windows.net",)}
ZONE_RESOURCES: dict[str, privatedns.PrivateZone] = {}


def private_zone(zone: str, vnet: pulumi.Resource) -> privatedns.PrivateZone:
    """One private DNS zone linked to ``vnet`` (created once per program run)."""
    key = zone.replace(".", "-")
    if key not in ZONE_RESOURCES:
        z = privatedns.PrivateZone(f"ok-dns-{key}", private_zone_name=zone, resource_group_name=RG, location="global",
                                   tags=TAGS)
        privatedns.VirtualNetworkLink(f"ok-dns-{key}-link", private_zone_name=z.name, resource_group_name=RG,
                                      location="global", virtual_network={"id": vnet.id}, registration_enabled=False,
                                      tags=TAGS)
        ZONE_RESOURCES[key] = z
    return ZONE_RESOURCES[key]


def private_endpoint(name: str, target: pulumi.Resource, group: str, vnet: pulumi.Resource | None = None) -> None:
    """A private endpoint for ``group`` of ``target``; with ``vnet``, registered in its zones linked there."""
    pe = network.PrivateEndpoint(name, resource_group_name=RG, location=LOC, tags=TAGS, subnet={"id": PE_SUBNET},
                                 private_link_service_connections=[{"name": group, "private_link_service_id": target.id,
                                                                    "group_ids": [group]}])
    if vnet is not None:
        network.PrivateDnsZoneGroup(f"{name}-dns", resource_group_name=RG, private_endpoint_name=pe.name,
                                    private_dns_zone_group_name="default", private_dns_zone_configs=[
                                        {"name": z.replace(".", "-"), "private_dns_zone_id": private_zone(z, vnet).id}
                                        for z in ZONES[group]])


def diagnostics(name: str, target: pulumi.Resource) -> None:
    monitor.DiagnosticSetting(name, resource_uri=target.id, workspace_id=WORKSPACE_ID,
                              logs=[{"category_group": "allLogs", "enabled": True}])


CONTAINER: dict[str, Any] = {
    "name": "app", "image": APP_IMAGE,
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
                  "limits": {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "1Gi"}},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
    "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}, "failureThreshold": 6},
    "startupProbe": {"httpGet": {"path": "/ready", "port": 8080}, "failureThreshold": 60},
}
POD: dict[str, Any] = {
    "serviceAccountName": "app", "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
}
LABELS = {"app.kubernetes.io/part-of": "matrix", "slm.io/scraped": "yes"}
VLLM_ARGS = ["--model", "microsoft/Phi-4-mini-instruct", "--max-model-len", "16384",
             "--enable-auto-tool-choice", "--tool-call-parser", "phi4_mini_json"]
KEY_ENV = {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "engine-api-key", "key": "api-key"}}}
VLLM_CONTAINER = _merge(CONTAINER, {
    "name": "vllm", "image": VLLM_IMAGE, "args": VLLM_ARGS, "env": [KEY_ENV],
    "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
    "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
})
VLLM_POD = _merge(POD, {
    "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    "nodeSelector": {"kubernetes.azure.com/agentpool": "gpu"},
    "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}],
})
INFERENCE = {"app.kubernetes.io/component": "inference"}


def workload(name: str, *, container: dict[str, Any] | None = None, pod: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None, namespace: str = NS, replicas: int | None = 2,
             kind: str = "Deployment", base: tuple[dict[str, Any], dict[str, Any]] = (CONTAINER, POD),
             annotations: dict[str, str] | None = None, strategy: dict[str, Any] | None = None,
             opts: pulumi.ResourceOptions | None = None, sidecars: tuple[dict[str, Any], ...] = ()) -> None:
    """A workload built from the compliant baseline; ``container`` / ``pod`` override parts of it."""
    pod_labels = {**LABELS, "app": name, **(labels or {})}
    pod_labels = {k: v for k, v in pod_labels.items() if v}
    pod_spec = _merge(base[1], pod or {})
    pod_spec["containers"] = [_merge(base[0], container or {}), *sidecars]
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec}}
    if replicas is not None and kind != "DaemonSet":
        spec["replicas"] = replicas
    if strategy is not None:
        spec["strategy"] = strategy
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    cls = {"Deployment": k8s.apps.v1.Deployment, "DaemonSet": k8s.apps.v1.DaemonSet}[kind]
    cls(name, metadata=metadata, spec=spec, opts=opts)


def vllm(name: str, *, container: dict[str, Any] | None = None, pod: dict[str, Any] | None = None,
         labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
         strategy: dict[str, Any] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
    workload(name, container=container, pod=pod, labels={**INFERENCE, **(labels or {})},
             base=(VLLM_CONTAINER, VLLM_POD), annotations=annotations, strategy=strategy, opts=opts)


PHI4_MINI = ModelShape(parameters_billion=3.84, layers=32, kv_heads=8, head_dim=128, quantization="bf16")


OLLAMA_HOST = {"name": "OLLAMA_HOST", "value": "127.0.0.1:11434"}
AUTH_PROXY = _merge(CONTAINER, {
    "name": "auth-proxy", "image": "docker.io/library/nginx:1.28.0-alpine" + DIGEST,
    "env": [{"name": "ENGINE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "engine-api-key", "key": "api-key"}}}],
    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]})
"""The API-key gate Ollama's pod runs (components/engines/auth_proxy.py): Ollama itself checks no key."""


def ollama(name: str, *, container: dict[str, Any] | None = None, gated: bool = True) -> None:
    base = _merge(CONTAINER, {"name": "ollama", "image": OLLAMA_IMAGE, "args": ["serve"], "env": [OLLAMA_HOST],
                              "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                              "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "failureThreshold": 6},
                              "startupProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "failureThreshold": 60}})
    workload(name, container=container, labels=INFERENCE, base=(base, POD), sidecars=(AUTH_PROXY,) if gated else ())


def autoscaler_hpa(name: str, *, target: str, metrics: list[dict[str, Any]], max_replicas: int = 4) -> None:
    k8s.autoscaling.v2.HorizontalPodAutoscaler(name, metadata={"name": name, "namespace": NS}, spec={
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": 2, "maxReplicas": max_replicas, "metrics": metrics})


def queue_depth_metric() -> list[dict[str, Any]]:
    return [{"type": "Pods", "pods": {"metric": {"name": "vllm:num_requests_waiting"},
                                      "target": {"type": "AverageValue", "averageValue": "8"}}}]


def serving_egress(name: str, cidr: str) -> None:
    """A serving namespace's egress policy: DNS, then HTTPS to ``cidr`` and Entra ID's sign-in range."""
    k8s.networking.v1.NetworkPolicy(name, metadata={
        "name": name, "namespace": NS, "labels": {"app.kubernetes.io/component": "inference"}}, spec={
        "podSelector": {"matchLabels": {"app": "ok-vllm"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}]},
                   {"to": [{"ipBlock": {"cidr": cidr, **({"except": ["169.254.169.254/32"]}
                                                          if cidr == "0.0.0.0/0" else {})}},
                           {"ipBlock": {"cidr": "20.190.128.0/18"}}],
                    "ports": [{"port": 443, "protocol": "TCP"}]}]})


# --------------------------------------------------------------------------- the program


def compliant_fixtures(vnet: pulumi.Resource) -> None:
    """The ``ok-*`` resources: the baselines every ``bad-*`` resource starts from; no violations."""
    ZONE_RESOURCES.clear()
    k8s.core.v1.Namespace("ok-namespace", metadata={"name": NS, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.33"}})
    k8s.networking.v1.NetworkPolicy("ok-default-deny", metadata={"name": "default-deny", "namespace": NS},
                                    spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    k8s.networking.v1.NetworkPolicy("ok-allow-monitoring", metadata={"name": "allow-monitoring", "namespace": NS},
                                    spec={"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [
                                        {"namespaceSelector": {"matchLabels": {
                                            "kubernetes.io/metadata.name": "monitoring"}}}]}]})
    serving_egress("ok-serving-egress", "10.42.16.0/24")
    k8s.policy.v1.PodDisruptionBudget("ok-pdb", metadata={"name": "matrix", "namespace": NS}, spec={
        "maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/part-of": "matrix"}}})
    k8s.apiextensions.CustomResource(
        "ok-podmonitor", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": "inference", "namespace": NS},
        spec={"selector": {"matchLabels": {"slm.io/scraped": "yes"}}, "podMetricsEndpoints": [{"port": "http"}]})
    workload("ok-app")
    vllm("ok-vllm")
    workload("ok-dcgm", kind="DaemonSet", container={"name": "dcgm-exporter",
                                                      "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3" + DIGEST})
    autoscaler_hpa("ok-hpa", target="ok-vllm", metrics=queue_depth_metric())
    k8s.core.v1.Service("ok-service", metadata={"name": "vllm", "namespace": NS},
                        spec={"type": "ClusterIP", "selector": {"app": "ok-vllm"}, "ports": [{"port": 8000}]})

    # CRD workloads embed pod specs (issue 12.4): checked like a Deployment, so a compliant one is silent.
    k8s.apiextensions.CustomResource(
        "ok-rollout", api_version="argoproj.io/v1alpha1", kind="Rollout", metadata={"name": "rollout", "namespace": NS},
        spec={"replicas": 2, "selector": {"matchLabels": {"app": "ok-rollout"}}, "template": {
            "metadata": {"labels": {**LABELS, "app": "ok-rollout"}}, "spec": {**POD, "containers": [CONTAINER]}}})

    ok_ai = account("ok-foundry")
    private_endpoint("ok-foundry-pe", ok_ai, "account", vnet)
    diagnostics("ok-foundry-diag", ok_ai)
    foundry_deployment("ok-foundry-phi")
    ok_aks = cluster("ok-aks")
    diagnostics("ok-aks-diag", ok_aks)
    system_invariants(ok_aks)
    deployer_reach(ok_aks)
    gpu_pool("ok-gpu-pool")
    private_endpoint("ok-acr-pe", registry("ok-acr"), "registry", vnet)
    ok_kv = vault("ok-kv")
    private_endpoint("ok-kv-pe", ok_kv, "vault", vnet)
    diagnostics("ok-kv-diag", ok_kv)
    private_endpoint("ok-st-pe", storage_account("ok-st"), "blob", vnet)
    operationalinsights.Workspace("ok-workspace", workspace_name="matrix", resource_group_name=RG, location=LOC,
                                  tags=TAGS, retention_in_days=365, sku={"name": "PerGB2018"})


SPOT_TOLERATION = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                   "effect": "NoSchedule"}
AGENT_TOLERATIONS = [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                     {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
ONE_AT_A_TIME = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1" + DIGEST


def system_invariants(ok_aks: containerservice.ManagedCluster) -> None:
    """Stack invariants over ok-aks's pools (all gpu_pool() fixtures name it), through a provider built
    from the cluster as InferenceCluster does: pods, node agents and pool capacity.

    ok-aks's GPU pools include bad-gpu-spot (AKS taints it scalesetpriority=spot:NoSchedule).
    """
    admin = grant("ok-sched-deployer-aks-admin", "Azure Kubernetes Service RBAC Cluster Admin", scope=ok_aks.id,
                  principal=DEPLOYER, description="deployer: applies the Kubernetes objects")
    on_aks = pulumi.ResourceOptions(provider=k8s.Provider(
        "ok-sched-k8s", kubeconfig="apiVersion: v1\nkind: Config\n",
        opts=pulumi.ResourceOptions(depends_on=[ok_aks, admin])))
    agent_pod = {"nodeSelector": {"accelerator": "nvidia"}}
    workload("ok-sched-device-plugin", kind="DaemonSet", container={"name": "nvidia-device-plugin",
                                                                    "image": PLUGIN_IMAGE},
             pod={**agent_pod, "tolerations": [*AGENT_TOLERATIONS, SPOT_TOLERATION]}, opts=on_aks)
    vllm("ok-sched-vllm", pod={"nodeSelector": {"kubernetes.azure.com/agentpool": "okgpupool"}},
         strategy=ONE_AT_A_TIME, opts=on_aks)
    workload("bad-sched-agent-no-spot", kind="DaemonSet", container={"name": "nvidia-device-plugin",
                                                                     "image": PLUGIN_IMAGE},
             pod={**agent_pod, "tolerations": AGENT_TOLERATIONS}, opts=on_aks)
    vllm("bad-sched-spot-untolerated", pod={"nodeSelector": {"kubernetes.azure.com/agentpool": "badgpuspot"}},
         strategy=ONE_AT_A_TIME, opts=on_aks)
    gpu_pool("bad-sched-full-pool", max_count=1)  # one A100: two single-GPU models do not fit
    for model in ("a", "b"):
        vllm(f"sched-model-{model}", pod={"nodeSelector": {"kubernetes.azure.com/agentpool": "badschedfull"}},
             strategy=ONE_AT_A_TIME, opts=on_aks)


def deployer_reach(ok_aks: containerservice.ManagedCluster) -> None:
    """The in-VNet deploy runner (tagged as components.deploy_runner tags it) reaches the private clusters from
    inside their VNet ('reach', ok-reach-vnet's); it cannot push to a registry whose only way in is a private endpoint it has no zone for."""
    runner_subnet = network.Subnet("ok-deploy-runner-snet", subnet_name="deploy-runner", resource_group_name=RG,
                                   virtual_network_name="reach", address_prefix="10.50.17.0/27")
    compute.VirtualMachineScaleSet(
        "ok-deploy-runner", vm_scale_set_name="vmss-runner", resource_group_name=RG, location=LOC,
        tags={**TAGS, "slm.io/role": "deploy-runner"}, sku={"name": "Standard_D2ds_v5", "capacity": 1},
        virtual_machine_profile={"network_profile": {"network_interface_configurations": [{
            "name": "nic", "primary": True, "ip_configurations": [{"name": "ip", "subnet": {"id": runner_subnet.id}}],
        }]}}, opts=pulumi.ResourceOptions(depends_on=[runner_subnet, ok_aks]))
    acr = registry("bad-deployer-acr")
    docker.Image("deployer-push", image_name=pulumi.Output.concat(acr.login_server, "/onnx-server:1"),
                 build=docker.DockerBuildArgs(context="components/engines/onnx_server"), build_on_preview=False,
                 registry=docker.RegistryArgs(server=acr.login_server), opts=pulumi.ResourceOptions(depends_on=[acr]))


def violating_foundry() -> None:
    account("bad-foundry-kind", kind="OpenAI", custom_sub_domain_name=None)
    account("bad-foundry-local-auth", disable_local_auth=False)
    account("bad-foundry-public", public_network_access="Enabled")
    account("bad-foundry-outbound", restrict_outbound_network_access=False)
    account("bad-foundry-no-pe")  # private, but no private endpoint
    account("bad-foundry-identity", identity=False)
    account("bad-foundry-cmk", encryption=None)
    foundry_deployment("bad-foundry-model", model={"format": "OpenAI", "name": "gpt-4o"})
    foundry_deployment("bad-foundry-auto-upgrade", version_upgrade_option="OnceNewDefaultVersionAvailable")
    foundry_deployment("bad-foundry-rai", rai_policy_name=None)
    foundry_deployment("bad-cost-foundry-capacity", sku={"name": "GlobalStandard", "capacity": 5000})
    cognitiveservices.AccountConnection(
        "bad-foundry-apikey-connection", account_name="ok-foundry", resource_group_name=RG,
        connection_name="search", properties=cognitiveservices.ApiKeyAuthConnectionPropertiesArgs(
            auth_type="ApiKey", category="CognitiveSearch", target="https://search.example",
            credentials=cognitiveservices.ConnectionApiKeyArgs(key="not-a-real-key")))
    # azure-native v3 ships no versioned modules: a version is generated locally
    # (`pulumi package add azure-native cognitiveservices 2025-04-01-preview`), and such a class
    # registers exactly this type token, which is what the engine sends to the pack.
    pulumi.CustomResource(PREVIEW_ACCOUNT, "bad-foundry-preview-api", {
        "resourceGroupName": RG, "location": LOC, "tags": TAGS, "kind": "AIServices", "sku": {"name": "S0"},
        "identity": {"type": "SystemAssigned"}, "properties": {
            "disableLocalAuth": True, "customSubDomainName": "matrix-preview", "publicNetworkAccess": "Disabled",
            "restrictOutboundNetworkAccess": True, "allowedFqdnList": ["matrixweights.blob.core.windows.net"],
            # versioned tokens are read like the default one (issue 12.4), so it must be compliant otherwise
            "encryption": {"keySource": "Microsoft.KeyVault", "keyVaultProperties": {
                "keyVaultUri": "https://matrixkv.vault.azure.net/", "keyName": "cmk"}}}})


def violating_aks() -> None:
    cluster("bad-aks-entra", aad_profile=None)
    cluster("bad-aks-azure-rbac", aad_profile={"enable_azure_rbac": False})
    cluster("bad-aks-local-accounts", disable_local_accounts=False)
    cluster("bad-aks-public-api", api_server_access_profile={"enable_private_cluster": None,
                                                             "authorized_ip_ranges": ["0.0.0.0/0"]})
    cluster("bad-aks-node-public-ip", pool={"enable_node_public_ip": True})
    cluster("bad-aks-dashboard", addon_profiles={"kubeDashboard": {"enabled": True}})
    cluster("bad-aks-no-network-policy", network_profile=None)
    cluster("bad-aks-no-oidc", oidc_issuer_profile=None)
    cluster("bad-aks-no-policy-addon", addon_profiles={"azurepolicy": {"enabled": False}})
    cluster("bad-aks-no-defender", security_profile={"defender": None})
    cluster("bad-aks-no-csi", addon_profiles={"azureKeyvaultSecretsProvider": None})
    cluster("bad-aks-no-host-encryption", pool={"enable_encryption_at_host": False})
    cluster("bad-aks-no-upgrade", auto_upgrade_profile=None)
    cluster("bad-aks-free-tier", sku={"tier": "Free"})
    cluster("bad-ops-no-metrics", azure_monitor_profile=None)
    operationalinsights.Workspace("bad-ops-short-retention", workspace_name="short", resource_group_name=RG,
                                  location=LOC, tags=TAGS, retention_in_days=30, sku={"name": "PerGB2018"})


def violating_gpu_and_cost() -> None:
    gpu_pool("bad-gpu-t4-in-prod", vm_size="Standard_NC4as_T4_v3")
    gpu_pool("bad-gpu-fixed-size", enable_auto_scaling=False, min_count=None, max_count=None, count=4)
    gpu_pool("bad-gpu-node-cap", vm_size="Standard_NV36ads_A10_v5", max_count=9)
    gpu_pool("bad-gpu-spot", scale_set_priority="Spot", scale_set_eviction_policy="Delete", spot_max_price=-1)
    gpu_pool("bad-gpu-untainted", node_taints=None)
    gpu_pool("bad-cost-h100-pool", vm_size="Standard_NC40ads_H100_v5", max_count=8)
    network.NetworkSecurityGroup("bad-cost-untagged", network_security_group_name="untagged",
                                 resource_group_name=RG, location=LOC)
    aci = {"os_type": "Linux", "ip_address": {"type": "Private", "ports": [{"port": 8000}]}, "containers": [{
        "name": "vllm", "image": VLLM_IMAGE, "resources": {"requests": {
            "cpu": 4, "memory_in_gb": 16, "gpu": {"count": 1, "sku": "V100"}}}}]}
    containerinstance.ContainerGroup("ok-cost-aci-gpu", container_group_name="aci-gpu", resource_group_name=RG,
                                     location=LOC, tags=TAGS, **aci)  # priced: $2,404 of the estimate
    containerinstance.ContainerGroup("bad-cost-unpriced", container_group_name="aci-windows", resource_group_name=RG,
                                     location=LOC, tags=TAGS, **{**aci, "os_type": "Windows"})


def violating_data() -> None:
    registry("bad-acr-admin", admin_user_enabled=True)
    registry("bad-acr-public", public_network_access="Enabled")
    registry("bad-acr-no-policies", policies=None)
    vault("bad-kv-access-policies", enable_rbac_authorization=False, access_policies=[{
        "tenant_id": "11111111-1111-1111-1111-111111111111", "object_id": "22222222-2222-2222-2222-222222222222",
        "permissions": {"secrets": ["get"]}}])
    vault("bad-kv-no-purge-protection", enable_purge_protection=None)
    vault("bad-kv-public", public_network_access="Enabled", network_acls={"default_action": "Allow"})
    vault("bad-kv-no-pe")  # private, but no private endpoint
    keyvault.Secret("bad-kv-secret", secret_name="engine-api-key", vault_name="ok-kv", resource_group_name=RG,
                    properties={"value": "not-a-real-secret-value"})
    storage_account("bad-st-tls10", minimum_tls_version="TLS1_0")
    storage_account("bad-st-public-blob", allow_blob_public_access=True)
    storage_account("bad-st-shared-key", allow_shared_key_access=True)
    storage_account("bad-st-public-network", public_network_access="Enabled", network_rule_set={"default_action": "Allow"})
    storage.BlobContainer("bad-st-public-container", container_name="weights", account_name="okst",
                          resource_group_name=RG, public_access="Container")
    network.NetworkSecurityGroup("bad-nsg-ollama-open", network_security_group_name="open", resource_group_name=RG,
                                 location=LOC, tags=TAGS, security_rules=[{
                                     "name": "ollama-open", "access": "Allow", "direction": "Inbound",
                                     "protocol": "Tcp", "priority": 100, "source_address_prefix": "Internet",
                                     "source_port_range": "*", "destination_address_prefix": "*",
                                     "destination_port_range": "11434"}])


def violating_workloads() -> None:
    workload("bad-k8s-privileged", container={"securityContext": {"privileged": True}})
    workload("bad-k8s-privilege-escalation", container={"securityContext": {"allowPrivilegeEscalation": True}})
    workload("bad-k8s-root", container={"securityContext": {"runAsUser": 0}})
    workload("bad-k8s-sys-admin", container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}})
    workload("bad-k8s-no-seccomp", pod={"securityContext": {"seccompProfile": None}})
    workload("bad-k8s-hostpath", pod={"volumes": [{"name": "host", "hostPath": {"path": "/var/lib"}}]})
    workload("bad-k8s-writable-root", container={"securityContext": {"readOnlyRootFilesystem": False}})
    workload("bad-k8s-no-limits", container={"resources": {"limits": None}})
    workload("bad-k8s-latest", container={"image": "mcr.microsoft.com/azurelinux/base/core:latest"})
    workload("bad-k8s-no-digest", container={"image": "mcr.microsoft.com/azurelinux/base/core:3.0"})
    workload("bad-k8s-no-probes", container={"readinessProbe": None, "livenessProbe": None})
    workload("bad-k8s-default-sa", pod={"serviceAccountName": None})
    k8s.rbac.v1.ClusterRole("bad-k8s-wildcard-role", metadata={"name": "matrix-wildcard"},
                            rules=[{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}])
    k8s.core.v1.Namespace("bad-k8s-unlabelled-namespace", metadata={"name": "loose"})
    workload("bad-k8s-default-namespace", namespace="default")
    workload("bad-k8s-uncovered", namespace="uncovered")
    serving_egress("bad-serving-internet-egress", "0.0.0.0/0")
    k8s.core.v1.Service("bad-k8s-public-lb", metadata={"name": "gateway", "namespace": NS},
                        spec={"type": "LoadBalancer", "selector": {"app": "ok-app"}, "ports": [{"port": 443}]})
    workload("bad-k8s-one-replica", replicas=1)
    workload("bad-k8s-no-pdb", labels={"app.kubernetes.io/part-of": ""})
    workload("bad-k8s-secret-env", container={"env": [{"name": "HF_TOKEN", "value": FAKE_HF_TOKEN}]})
    k8s.core.v1.Pod("bad-k8s-bare-pod", metadata={"name": "bare", "namespace": NS},
                    spec=_merge(POD, {"containers": [CONTAINER]}))
    k8s.helm.v3.Release("bad-k8s-helm-grafana", chart="grafana", version="10.1.4", namespace="monitoring",
                        repository_opts={"repo": "https://grafana.github.io/helm-charts"},
                        values={"adminPassword": "not-a-real-password"})
    vllm("bad-gpu-two-gpus", container={"resources": {"requests": {"nvidia.com/gpu": 2},
                                                      "limits": {"nvidia.com/gpu": 2}}})
    workload("bad-gpu-cpu-pod-tolerates", pod={"tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu",
                                                                "effect": "NoSchedule"}]})
    autoscaler_hpa("bad-gpu-hpa-max", target="ok-vllm", metrics=queue_depth_metric(), max_replicas=20)
    vllm("bad-ops-unscraped", labels={"slm.io/scraped": ""})
    k8s.core.v1.Service("bad-ops-grafana-lb", metadata={"name": "grafana", "namespace": "monitoring"},
                        spec={"type": "LoadBalancer", "selector": {"app": "grafana"}, "ports": [{"port": 80}]})
    grafana = dashboard.Grafana("bad-ops-managed-grafana", workspace_name="matrix", resource_group_name=RG,
                                location=LOC, tags=TAGS, sku={"name": "Standard"}, identity={"type": "SystemAssigned"},
                                properties={"public_network_access": "Enabled", "api_key": "Enabled"})
    grant("ok-grafana-admins", "Grafana Admin", scope=grafana.id, principal=PEOPLE, principal_type="Group")


def violating_coverage() -> None:
    pulumi.CustomResource("azure:storage/account:Account", "bad-pack-classic-storage", {
        "resourceGroupName": RG, "accountTier": "Standard", "accountReplicationType": "ZRS", "tags": TAGS})
    k8s.helm.v4.Chart("bad-pack-helm-v4", chart="oci://registry-1.docker.io/bitnamicharts/redis", version="20.0.0",
                      namespace=NS)


def violating_edge_and_serving() -> None:
    edge = {"slm.io/tier": "edge"}
    workload("bad-edge-unpinned", labels=edge, container={"image": "docker.io/ollama/ollama:0.12.6"})
    workload("bad-edge-host-network", labels=edge, pod={"hostNetwork": True})
    edge_pinned = {"imagePullPolicy": "IfNotPresent", "image": EDGE_IMAGE, "env": [
        {"name": "ENGINE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "slm-edge-api-key", "key": "api-key"}}}]}
    model_sha = {"slm.io/model-sha256": "c" * 64}
    fill = _merge(CONTAINER, {**edge_pinned, "name": "fill-model", "command": ["python", "/app/entrypoint.py"],
                              "args": ["--registry", "okreachacr.azurecr.io", "--model", "phi-4-mini", "--revision",
                                       "1" * 40, "--dest", "/models"]})
    download = _merge(CONTAINER, {**edge_pinned, "name": "download-model", "command": ["/bin/sh", "-c"],
                                  "args": ["exec python /app/download.py --repo microsoft/Phi-4-mini-instruct-onnx"]})
    workload("ok-edge-registry-fill", labels=edge, container=edge_pinned, annotations=model_sha,
             pod={"initContainers": [fill]})
    workload("bad-edge-public-hub", labels=edge, container=edge_pinned, annotations=model_sha,
             pod={"initContainers": [download]})
    iothub.IotHubResource("bad-edge-iot-local-auth", resource_name_="matrixhub", resource_group_name=RG,
                          location=LOC, tags=TAGS, sku={"name": "S1", "capacity": 1},
                          properties={"disable_local_auth": False, "min_tls_version": "1.2",
                                      "public_network_access": "Disabled"})
    vllm("bad-serving-no-parser", container={"args": [a for a in VLLM_ARGS if a not in
                                                      ("--tool-call-parser", "phi4_mini_json")]})
    vllm("bad-serving-awq-flag", container={"args": [*VLLM_ARGS, "--quantization", "awq"]})
    vllm("bad-serving-cuda-on-cpu", container={"resources": {"requests": {"nvidia.com/gpu": None},
                                                             "limits": {"nvidia.com/gpu": None}}},
         pod={"tolerations": None, "nodeSelector": None})
    k8s.apiextensions.CustomResource(
        "bad-serving-ollama-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
        metadata={"name": "ollama", "namespace": NS},
        spec={"selector": {"matchLabels": {"app": "ollama"}}, "endpoints": [{"port": "http", "path": "/metrics"}]})
    ollama("ok-ollama")
    ollama("bad-serving-ollama-curl-probe", container={"livenessProbe": {
        "exec": {"command": ["curl", "-f", "http://localhost:11434/api/health"]}}})
    ollama("bad-serving-ollama-bogus-env", container={"env": [{"name": "OLLAMA_NUM_CTX", "value": "8192"}, OLLAMA_HOST]})
    ollama("bad-serving-ollama-open", gated=False, container={
        "env": [{"name": "OLLAMA_HOST", "value": "0.0.0.0:11434"}],
        "ports": [{"name": "http", "containerPort": 11434, "protocol": "TCP"}]})
    workload("bad-serving-foundry-local", container={"image": "mcr.microsoft.com/foundry-local/runtime:0.7" + DIGEST})
    vllm("bad-serving-trust-remote-code", container={"args": [*VLLM_ARGS, "--trust-remote-code"]})
    vllm("bad-serving-dev-mode", container={"env": [{"name": "VLLM_SERVER_DEV_MODE", "value": "1"}, KEY_ENV]})
    vllm("bad-serving-no-log-stats", container={"args": [*VLLM_ARGS, "--disable-log-stats"]})
    vllm("bad-serving-unbounded", container={"args": [a for a in VLLM_ARGS if a not in ("--max-model-len", "16384")]})
    vllm("bad-serving-no-shm", container={"volumeMounts": None}, pod={"volumes": None})
    # Phi-4-mini (bf16) on a 16 GiB T4: 16k tokens fit, the model's full 128k context does not.
    vllm("ok-vllm-fits-its-gpu", annotations=shape_annotations(PHI4_MINI, gpu_memory_gib=16))
    vllm("bad-serving-context-too-long", annotations=shape_annotations(PHI4_MINI, gpu_memory_gib=16),
         container={"args": [("131072" if a == "16384" else a) for a in VLLM_ARGS]})
    autoscaler_hpa("bad-serving-hpa-gpu-util", target="ok-vllm", metrics=[{"type": "External", "external": {
        "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"}, "target": {"type": "Value", "value": "80"}}}])
    k8s.apiextensions.CustomResource(
        "bad-serving-keda-gpu-util", api_version="keda.sh/v1alpha1", kind="ScaledObject",
        metadata={"name": "vllm-gpu", "namespace": NS},
        spec={"scaleTargetRef": {"name": "ok-vllm"}, "minReplicaCount": 2, "maxReplicaCount": 4, "triggers": [{
            "type": "prometheus", "metadata": {"serverAddress": "http://prometheus.monitoring:9090",
                                               "query": "avg(DCGM_FI_DEV_GPU_UTIL)", "threshold": "80"}}]})

# --------------------------------------------------------------------------- system invariants (issue 17)

PEOPLE = "5b1a0d2e-0000-4000-8000-000000000002"
DEPLOYER = "5b1a0d2e-0000-4000-8000-000000000003"
REACH = "reach"


def grant(name: str, role: str, *, scope: pulumi.Input[str], principal: pulumi.Input[str],
          principal_type: str = "ServicePrincipal", description: str | None = None,
          depends_on: list[pulumi.Resource] | None = None) -> authorization.RoleAssignment:
    return authorization.RoleAssignment(
        name, scope=scope, principal_id=principal, principal_type=principal_type, description=description,
        role_definition_id=f"/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
                           f"Microsoft.Authorization/roleDefinitions/{ROLE_IDS[role]}",
        opts=pulumi.ResourceOptions(depends_on=depends_on or []))


def reach_network() -> tuple[network.VirtualNetwork, network.Subnet]:
    vnet = network.VirtualNetwork("ok-reach-vnet", virtual_network_name="reach", resource_group_name=RG,
                                  location=LOC, tags=TAGS, address_space={"address_prefixes": ["10.50.0.0/16"]})
    subnet = network.Subnet("ok-reach-snet", subnet_name="aks", resource_group_name=RG,
                            virtual_network_name=vnet.name, address_prefix="10.50.0.0/20",
                            service_endpoints=[{"service": "Microsoft.KeyVault"}])
    return vnet, subnet


def identity_(name: str) -> managedidentity.UserAssignedIdentity:
    return managedidentity.UserAssignedIdentity(name, resource_name_=name, resource_group_name=RG, location=LOC,
                                                tags=TAGS)


def spc(name: str, kv: pulumi.Resource, wi: managedidentity.UserAssignedIdentity, provider: k8s.Provider) -> None:
    k8s.apiextensions.CustomResource(
        name, api_version="secrets-store.csi.x-k8s.io/v1", kind="SecretProviderClass",
        metadata={"name": name, "namespace": REACH},
        spec={"provider": "azure", "parameters": {"usePodIdentity": "false", "clientID": wi.client_id,
                                                  "keyvaultName": kv.name, "tenantId": "t"}},
        opts=pulumi.ResourceOptions(provider=provider))


def reach_cluster(vnet: pulumi.Resource, subnet: network.Subnet) -> tuple[containerservice.ManagedCluster, k8s.Provider,
                                                                          managedidentity.UserAssignedIdentity]:
    """A cluster with a bring-your-own kubelet identity and subnet, its grants ordered before it."""
    cp, kubelet = identity_("ok-reach-id-cp"), identity_("ok-reach-id-kubelet")
    mio = grant("ok-reach-mio", "Managed Identity Operator", scope=kubelet.id, principal=cp.principal_id)
    netc = grant("ok-reach-netc", "Network Contributor", scope=subnet.id, principal=cp.principal_id)
    byo = {"identity": {"type": "UserAssigned", "user_assigned_identities": [cp.id]},
           "identity_profile": {"kubeletidentity": {"resource_id": kubelet.id, "client_id": kubelet.client_id,
                                                    "object_id": kubelet.principal_id}}}
    aks = containerservice.ManagedCluster(
        "ok-reach-aks", resource_name_="ok-reach-aks", resource_group_name=RG, location=LOC, tags=TAGS,
        dns_prefix="reach", agent_pool_profiles=[_merge(SYSTEM_POOL, {"vnet_subnet_id": subnet.id})],
        **_merge(CLUSTER, byo), opts=pulumi.ResourceOptions(depends_on=[mio, netc]))
    diagnostics("ok-reach-aks-diag", aks)
    containerservice.AgentPool("ok-reach-cpu-pool", agent_pool_name="cpu", resource_group_name=RG,
                               resource_name_="ok-reach-aks", vm_size="Standard_D4ds_v5", mode="User",
                               enable_auto_scaling=True, min_count=1, max_count=2, enable_encryption_at_host=True)
    containerservice.ManagedCluster(  # the same identities, created in parallel with their grants
        "bad-identity-grants-parallel", resource_name_="bad-identity-grants-parallel", resource_group_name=RG,
        location=LOC, tags=TAGS, dns_prefix="parallel", agent_pool_profiles=[SYSTEM_POOL], **_merge(CLUSTER, byo))
    admin = grant("ok-reach-deployer-aks-admin", "Azure Kubernetes Service RBAC Cluster Admin", scope=aks.id,
                  principal=DEPLOYER, description="deployer: applies the Kubernetes objects")
    provider = k8s.Provider("ok-reach-k8s", kubeconfig="apiVersion: v1\nkind: Config\n",
                            opts=pulumi.ResourceOptions(depends_on=[aks, admin]))
    no_grant = cluster("bad-identity-deployer-aks")
    k8s.Provider("bad-identity-deployer-k8s", kubeconfig="apiVersion: v1\nkind: Config\n",
                 opts=pulumi.ResourceOptions(depends_on=[no_grant]))
    return aks, provider, kubelet


def reach_scraping(provider: k8s.Provider) -> None:
    opts = pulumi.ResourceOptions(provider=provider)
    labels = {**LABELS, "app": "ok-reach-app"}
    k8s.apps.v1.Deployment("ok-reach-app", metadata={"name": "ok-reach-app", "namespace": REACH}, spec={
        "replicas": 2, "selector": {"matchLabels": {"app": "ok-reach-app"}},
        "template": {"metadata": {"labels": labels}, "spec": {**POD, "containers": [
            _merge(CONTAINER, {"ports": [{"name": "http", "containerPort": 8080}]})]}}}, opts=opts)
    k8s.policy.v1.PodDisruptionBudget("ok-reach-pdb", metadata={"name": "reach", "namespace": REACH}, spec={
        "maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/part-of": "matrix"}}}, opts=opts)
    k8s.core.v1.Service("ok-reach-svc", metadata={"name": "ok-reach-app", "namespace": REACH, "labels": labels},
                        spec={"type": "ClusterIP", "selector": {"app": "ok-reach-app"},
                              "ports": [{"name": "http", "port": 8080}]}, opts=opts)
    k8s.networking.v1.NetworkPolicy("ok-reach-deny", metadata={"name": "default-deny", "namespace": REACH},
                                    spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, opts=opts)
    k8s.networking.v1.NetworkPolicy(
        "ok-reach-allow-monitoring", metadata={"name": "allow-monitoring", "namespace": REACH},
        spec={"podSelector": {"matchLabels": {"app": "ok-reach-app"}}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"port": 8080, "protocol": "TCP"}]}]}, opts=opts)
    for name, group in (("ok-reach-scrape", "monitoring.coreos.com"), ("bad-reach-managed-scrape",
                                                                      "azmonitoring.coreos.com")):
        k8s.apiextensions.CustomResource(name, api_version=f"{group}/v1", kind="ServiceMonitor",
                                         metadata={"name": name, "namespace": REACH},
                                         spec={"selector": {"matchLabels": {"app": "ok-reach-app"}},
                                               "endpoints": [{"port": "http", "path": "/metrics"}]}, opts=opts)


def reach_data(provider: k8s.Provider, kubelet: managedidentity.UserAssignedIdentity, subnet: network.Subnet,
               vnet: pulumi.Resource) -> None:
    wi, unprivileged = identity_("ok-reach-wi"), identity_("ok-reach-wi-unprivileged")
    ok_kv = vault("ok-reach-kv", public_network_access="Enabled", network_acls={
        "default_action": "Deny", "bypass": "AzureServices", "virtual_network_rules": [{"id": subnet.id}]})
    shut = vault("bad-reach-kv-firewall", public_network_access="Enabled", network_acls={
        "default_action": "Deny", "bypass": "AzureServices", "ip_rules": [{"value": "203.0.113.0/24"}]})
    for name, kv in (("ok-reach-kv", ok_kv), ("bad-reach-kv-firewall", shut)):
        diagnostics(f"{name}-diag", kv)
        grant(f"ok-{name.removeprefix('ok-')}-ra-wi", "Key Vault Secrets User", scope=kv.id, principal=wi.principal_id)
    spc("ok-reach-spc", ok_kv, wi, provider)
    spc("ok-reach-spc-firewalled", shut, wi, provider)
    spc("bad-identity-spc-no-role", ok_kv, unprivileged, provider)
    pull = registry("ok-reach-acr")
    private_endpoint("ok-reach-acr-pe", pull, "registry", vnet)
    grant("ok-reach-acr-pull", "AcrPull", scope=pull.id, principal=kubelet.principal_id)
    no_pull = registry("bad-identity-acr-no-pull")
    private_endpoint("bad-identity-acr-no-pull-pe", no_pull, "registry", vnet)
    for name, host in (("ok-reach-puller", "okreachacr"), ("ok-reach-puller-2", "badidentityacrnopull")):
        k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": REACH}, spec={
            "replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {**LABELS, "app": name}}, "spec": {**POD, "containers": [
                _merge(CONTAINER, {"image": f"{host}.azurecr.io/slm/app:1.0{DIGEST}"})]}}},
            opts=pulumi.ResourceOptions(provider=provider))


def reach_keda(aks: containerservice.ManagedCluster, provider: k8s.Provider) -> None:
    amw = monitor.AzureMonitorWorkspace("ok-reach-amw", azure_monitor_workspace_name="reach", resource_group_name=RG,
                                        location=LOC, tags=TAGS)
    endpoint = amw.metrics.apply(lambda m: m.prometheus_query_endpoint if m else "")
    issuer = aks.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")
    for suffix, reader in (("", True), ("-2", False)):
        uai = identity_(f"ok-reach-keda{suffix}")
        managedidentity.FederatedIdentityCredential(
            f"ok-reach-keda-fic{suffix}", resource_name_=uai.name, resource_group_name=RG, issuer=issuer,
            federated_identity_credential_resource_name=f"keda{suffix}", audiences=["api://AzureADTokenExchange"],
            subject="system:serviceaccount:kube-system:keda-operator")
        if reader:
            grant("ok-reach-keda-reader", "Monitoring Data Reader", scope=amw.id, principal=uai.principal_id)
        opts = pulumi.ResourceOptions(provider=provider)
        k8s.apiextensions.CustomResource(
            f"ok-reach-keda-auth{suffix}", api_version="keda.sh/v1alpha1", kind="TriggerAuthentication",
            metadata={"name": f"prometheus{suffix}", "namespace": REACH},
            spec={"podIdentity": {"provider": "azure-workload", "identityId": uai.client_id}}, opts=opts)
        name = "ok-reach-scaler" if reader else "bad-identity-keda-no-reader"
        k8s.apiextensions.CustomResource(
            name, api_version="keda.sh/v1alpha1", kind="ScaledObject", metadata={"name": name, "namespace": REACH},
            spec={"scaleTargetRef": {"name": "ok-reach-app"}, "minReplicaCount": 2, "maxReplicaCount": 4,
                  "triggers": [{"type": "prometheus", "authenticationRef": {"name": f"prometheus{suffix}"},
                                "metadata": {"serverAddress": endpoint, "threshold": "8",
                                             "query": "sum(vllm:num_requests_waiting)"}}]}, opts=opts)


def relation_invariants(vnet: pulumi.Resource, subnet: network.Subnet) -> None:
    """Relations between resources: who reaches whom, who may do what, what conflicts."""
    aks, provider, kubelet = reach_cluster(vnet, subnet)
    reach_scraping(provider)
    reach_data(provider, kubelet, subnet, vnet)
    reach_keda(aks, provider)
    iothub.IotHubResource("bad-reach-iot-hub-no-pe", resource_name_="matrixprivatehub", resource_group_name=RG,
                          location=LOC, tags=TAGS, sku={"name": "S1", "capacity": 1},
                          properties={"disable_local_auth": True, "min_tls_version": "1.2",
                                      "public_network_access": "Disabled"})
    dashboard.Grafana("bad-identity-grafana-no-admin", workspace_name="noadmin", resource_group_name=RG, location=LOC,
                      tags=TAGS, sku={"name": "Standard"}, identity={"type": "SystemAssigned"},
                      properties={"public_network_access": "Disabled", "api_key": "Disabled"})
    monitor.DiagnosticSetting("bad-conflict-diag-twice", resource_uri=aks.id, workspace_id=WORKSPACE_ID,
                              logs=[{"category": "kube-audit-admin", "enabled": True}])
    vault("bad-conflict-kv-name", vault_name="ok-kv")



def existence_and_completeness() -> None:
    """What the plan names must exist (chart versions, Foundry offers); servers get the args they need."""
    k8s.helm.v3.Release("bad-exist-chart-version", chart="kube-prometheus-stack", version="81.4.5",
                        namespace="monitoring",
                        repository_opts={"repo": "https://prometheus-community.github.io/helm-charts"})
    foundry_deployment("bad-foundry-data-zone-phi", sku={"name": "DataZoneStandard", "capacity": 10})
    onnx = {"name": "onnx-genai", "command": ["python", "/app/server.py"], "env": [
        {"name": "ENGINE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "engine-api-key", "key": "api-key"}}}]}
    workload("ok-onnx-server", container={**onnx, "args": ["--model-dir", "/models/cpu", "--served-model-name", "phi4"]})
    workload("bad-serving-onnx-args", container={**onnx, "args": ["--model-dir", "/models/cpu"]})


def alert_routing_fixtures() -> None:
    """Alerts reach someone: a managed rule group naming an action group with a receiver; one naming none."""
    from pulumi_azure_native import alertsmanagement

    group = monitor.ActionGroup("ok-alert-action-group", resource_group_name=RG, location="global", enabled=True,
                                group_short_name="slmcrit", tags=TAGS,
                                email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(
                                    name="team", email_address="ml@contoso.example", use_common_alert_schema=True)])
    rule = {"alert": "SlmModelServerDown", "expression": "sum(kube_deployment_status_replicas_available) < 1",
            "severity": 0, "labels": {"severity": "critical"},
            "annotations": {"runbook_url": "https://github.com/contoso/slm/blob/main/docs/runbooks/SlmModelServerDown.md"}}
    scope = f"{SUB}/Microsoft.Monitor/accounts/matrix"
    alertsmanagement.PrometheusRuleGroup(
        "ok-alert-rules", resource_group_name=RG, location=LOC, tags=TAGS, scopes=[scope], interval="PT1M",
        rules=[alertsmanagement.PrometheusRuleArgs(**rule, actions=[
            alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=group.id)])])
    alertsmanagement.PrometheusRuleGroup(
        "bad-alert-unrouted", resource_group_name=RG, location=LOC, tags=TAGS, scopes=[scope], interval="PT1M",
        rules=[alertsmanagement.PrometheusRuleArgs(**rule)])


def matrix_program() -> None:
    vnet, subnet = reach_network()
    compliant_fixtures(vnet)
    relation_invariants(vnet, subnet)
    alert_routing_fixtures()
    violating_foundry()
    violating_aks()
    violating_gpu_and_cost()
    violating_data()
    violating_workloads()
    violating_coverage()
    violating_edge_and_serving()
    existence_and_completeness()


# --------------------------------------------------------------------------- expectations

CASES: tuple[tuple[str, str, str], ...] = (
    # (policy, intended resource, exact message after "<resource> (<type>): "; "..." at the end: a prefix)
    ("slm-foundry-account-kind", "bad-foundry-kind", "kind: found 'OpenAI'; use 'AIServices', the Foundry resource kind."),
    ("slm-foundry-local-auth-disabled", "bad-foundry-local-auth", "properties.disableLocalAuth: found false; set it to true and grant callers 'Cognitive Services User' through Entra ID."),
    ("slm-foundry-local-auth-disabled", "bad-foundry-apikey-connection", "properties.authType: found 'ApiKey'; use 'AAD' (managed identity) for the connection."),
    ("slm-foundry-public-network", "bad-foundry-public", "properties.publicNetworkAccess: found 'Enabled' with properties.networkAcls.defaultAction unset; set publicNetworkAccess to 'Disabled' and reach the account through a private endpoint (or set networkAcls.defaultAction to 'Deny' with explicit ipRules)."),
    ("slm-foundry-outbound-restricted", "bad-foundry-outbound", "properties.restrictOutboundNetworkAccess: found false; set it to true and list the allowed destinations in properties.allowedFqdnList."),
    ("slm-foundry-private-endpoint", "bad-foundry-no-pe", "privateEndpoint: found none for 'bad-foundry-no-pe'; add an azure-native:network:PrivateEndpoint whose privateLinkServiceConnections[*].privateLinkServiceId is its id and groupIds contains 'account'."),
    ("slm-foundry-managed-identity", "bad-foundry-identity", "identity.type: found unset; use 'SystemAssigned' (or 'UserAssigned') so the resource authenticates to storage and Key Vault without keys."),
    ("slm-foundry-customer-managed-key", "bad-foundry-cmk", "properties.encryption.keySource: found unset; set 'Microsoft.KeyVault' with keyVaultProperties.keyVaultUri and keyName."),
    ("slm-foundry-approved-models", "bad-foundry-model", "properties.model: found 'OpenAI/gpt-4o'; deploy one of the approved SLMs (Microsoft/Phi-4-mini-instruct, Microsoft/Phi-4-mini-reasoning, Microsoft/Phi-4, Microsoft/Phi-4-reasoning, Microsoft/Phi-4-multimodal-instruct, Microsoft/Phi-3.5-mini-instruct) or add it to allowedModels."),
    ("slm-foundry-approved-models", "bad-foundry-auto-upgrade", "properties.versionUpgradeOption: found 'OnceNewDefaultVersionAvailable'; use 'NoAutoUpgrade' so the model changes only through a reviewed deployment."),
    ("slm-foundry-rai-policy", "bad-foundry-rai", "properties.raiPolicyName: found unset; use one of Microsoft.DefaultV2, Microsoft.Default or add your reviewed policy to approvedRaiPolicies."),
    ("slm-foundry-no-preview-api", "bad-foundry-preview-api", f"type: found preview API version {PREVIEW_ACCOUNT!r}; use the default-version token 'azure-native:cognitiveservices:Account'."),
    ("slm-aks-entra-rbac", "bad-aks-entra", "aadProfile.managed: found unset; enable managed Entra ID."),
    ("slm-aks-azure-rbac", "bad-aks-azure-rbac", "aadProfile.enableAzureRBAC: found false; set it to true so cluster access is granted with Azure role assignments."),
    ("slm-aks-local-accounts", "bad-aks-local-accounts", "disableLocalAccounts: found false; set it to true (requires managed Entra ID) so nobody holds a non-expiring admin kubeconfig."),
    ("slm-aks-api-server-access", "bad-aks-public-api", "apiServerAccessProfile.enablePrivateCluster: found unset; this environment requires a private API server."),
    ("slm-aks-node-public-ip", "bad-aks-node-public-ip", "agentPoolProfiles[0].enableNodePublicIP: found true; nodes must not have public IPs (egress goes through the load balancer or NAT gateway)."),
    ("slm-aks-legacy-addons", "bad-aks-dashboard", "addonProfiles.kubeDashboard.enabled: found true; disable it (it exposes cluster-wide access)."),
    ("slm-aks-network-policy", "bad-aks-no-network-policy", "networkProfile.networkPolicy: found unset; set 'cilium' (or 'azure'/'calico') so NetworkPolicies are enforced."),
    ("slm-aks-workload-identity", "bad-aks-no-oidc", "oidcIssuerProfile.enabled: found unset; set it to true."),
    ("slm-aks-azure-policy-addon", "bad-aks-no-policy-addon", "addonProfiles.azurepolicy.enabled: found false; enable the Azure Policy add-on."),
    ("slm-aks-defender", "bad-aks-no-defender", "securityProfile.defender.securityMonitoring.enabled: found unset; enable Defender."),
    ("slm-aks-secrets-store-csi", "bad-aks-no-csi", "addonProfiles.azureKeyvaultSecretsProvider.enabled: found unset; enable the Key Vault CSI driver so model tokens and API keys are mounted from Key Vault."),
    ("slm-aks-encryption-at-host", "bad-aks-no-host-encryption", "agentPoolProfiles[0].enableEncryptionAtHost: found false; set it to true so temp disks and caches (model weights) are encrypted."),
    ("slm-aks-auto-upgrade", "bad-aks-no-upgrade", "autoUpgradeProfile.upgradeChannel: found unset; use 'patch' or 'stable'."),
    ("slm-aks-production-sla", "bad-aks-free-tier", "sku.tier: found 'Free'; use 'Standard' for the uptime SLA."),
    ("slm-registry-auth", "bad-acr-admin", "adminUserEnabled: found true; disable it and grant AcrPull to managed identities."),
    ("slm-registry-network", "bad-acr-public", "publicNetworkAccess: found 'Enabled' with networkRuleSet.defaultAction unset; disable public access (Premium SKU + private endpoint) or default the firewall to 'Deny'."),
    ("slm-registry-content-policies", "bad-acr-no-policies", "policies.retentionPolicy.status: found unset; set 'enabled' (untagged manifests are purged)."),
    ("slm-keyvault-rbac", "bad-kv-access-policies", "properties.enableRbacAuthorization: found false; set it to true."),
    ("slm-keyvault-recovery", "bad-kv-no-purge-protection", "properties.enablePurgeProtection: found unset; set it to true."),
    ("slm-keyvault-network", "bad-kv-public", "properties.networkAcls.defaultAction: found 'Allow' with publicNetworkAccess 'Enabled'; set publicNetworkAccess to 'Disabled' or networkAcls.defaultAction to 'Deny'."),
    ("slm-keyvault-private-endpoint", "bad-kv-no-pe", "privateEndpoint: found none for 'bad-kv-no-pe'; add an azure-native:network:PrivateEndpoint whose privateLinkServiceConnections[*].privateLinkServiceId is its id and groupIds contains 'vault'."),
    ("slm-keyvault-secret-metadata", "bad-kv-secret", "properties.attributes.expires: found unset; give the secret an expiry (epoch seconds) and rotate it."),
    ("slm-storage-secure-transfer", "bad-st-tls10", "minimumTlsVersion: found 'TLS1_0'; set 'TLS1_2'."),
    ("slm-storage-no-public-blob", "bad-st-public-blob", "allowBlobPublicAccess: found true; set it to false, model weights are not public."),
    ("slm-storage-no-public-blob", "bad-st-public-container", "publicAccess: found 'Container'; use 'None'."),
    ("slm-storage-no-shared-key", "bad-st-shared-key", "allowSharedKeyAccess: found true; set it to false and use Entra ID (Storage Blob Data Reader) for model downloads."),
    ("slm-storage-network", "bad-st-public-network", "networkRuleSet.defaultAction: found 'Allow'; set 'Deny' (or publicNetworkAccess 'Disabled') and reach the account through a private endpoint."),
    ("slm-network-no-open-management-ports", "bad-nsg-ollama-open", "securityRules[0].sourceAddressPrefix: rule 'ollama-open' allows ['Internet'] to ports 11434; restrict the source to known CIDRs or use Bastion / a private endpoint."),
    ("slm-k8s-pss-baseline", "bad-k8s-privileged", "spec.template.spec.containers[0].securityContext.privileged: found true; remove it (GPU access comes from the device plugin, not privilege)."),
    ("slm-k8s-no-privilege-escalation", "bad-k8s-privilege-escalation", "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation: found true; set it to false."),
    ("slm-k8s-run-as-non-root", "bad-k8s-root", "spec.template.spec.containers[0].securityContext.runAsUser: found 0; do not run as root."),
    ("slm-k8s-drop-capabilities", "bad-k8s-sys-admin", "spec.template.spec.containers[0].securityContext.capabilities.add: found ['SYS_ADMIN']; only NET_BIND_SERVICE may be added."),
    ("slm-k8s-seccomp", "bad-k8s-no-seccomp", "spec.template.spec.containers[0].securityContext.seccompProfile.type: found unset and the pod has unset; set spec.securityContext.seccompProfile.type to 'RuntimeDefault'."),
    ("slm-k8s-volume-types", "bad-k8s-hostpath", "spec.template.spec.volumes[0]: found hostPath volume 'host'; use a PVC, emptyDir or CSI volume (hostPath needs a written exemption)."),
    ("slm-k8s-read-only-root", "bad-k8s-writable-root", "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: found false; set it to true and mount emptyDir volumes at the paths the engine writes (/tmp, caches, /dev/shm)."),
    ("slm-k8s-resources", "bad-k8s-no-limits", "spec.template.spec.containers[0].resources.limits: found no cpu, memory, ephemeral-storage; set them so the scheduler and the kubelet can protect the node."),
    ("slm-k8s-image-provenance", "bad-k8s-latest", "spec.template.spec.containers[0].image: found 'mcr.microsoft.com/azurelinux/base/core:latest' (tag latest); pin a version tag and preferably a @sha256 digest."),
    ("slm-k8s-image-digest", "bad-k8s-no-digest", "spec.template.spec.containers[0].image: found 'mcr.microsoft.com/azurelinux/base/core:3.0' without a digest; pin it as 'repo:tag@sha256:<digest>'."),
    ("slm-k8s-probes", "bad-k8s-no-probes", "spec.template.spec.containers[0]: found no readinessProbe and no livenessProbe; add them so traffic and restarts follow the server's health."),
    ("slm-k8s-service-account", "bad-k8s-default-sa", "spec.template.spec.serviceAccountName: found unset; give the workload its own service account."),
    ("slm-k8s-rbac-least-privilege", "bad-k8s-wildcard-role", "rules[0]: found a '*' verb or resource; list the verbs and resources it needs."),
    ("slm-k8s-namespace", "bad-k8s-unlabelled-namespace", "metadata.labels['pod-security.kubernetes.io/enforce']: found unset; set 'restricted'."),
    ("slm-k8s-namespace", "bad-k8s-default-namespace", "metadata.namespace: found 'default'; deploy into a dedicated namespace, never 'default'."),
    ("slm-k8s-network-policy-coverage", "bad-k8s-uncovered", "spec.template.metadata.labels: found no NetworkPolicy in namespace 'uncovered' selecting 'bad-k8s-uncovered'; add one that allows only its callers (the gateway, Prometheus)."),
    ("slm-serving-no-internet-egress", "bad-serving-internet-egress", "spec.egress[1].to[0].ipBlock.cidr: found '0.0.0.0/0'; serving pods here reach only private endpoints and Entra ID. Load weights from the ModelRegistry (registry fill step) and allow the private endpoint subnet instead."),
    ("slm-k8s-service-exposure", "bad-k8s-public-lb", "spec.type: found a public 'LoadBalancer'; annotate it service.beta.kubernetes.io/azure-load-balancer-internal: 'true' or use the gateway."),
    ("slm-k8s-replicas-spread", "bad-k8s-one-replica", "spec.replicas: found 1; run at least 2 replicas here."),
    ("slm-k8s-disruption-budget", "bad-k8s-no-pdb", "podDisruptionBudget: found none selecting 'bad-k8s-no-pdb'; add one with maxUnavailable: 1."),
    ("slm-k8s-no-secrets-in-env", "bad-k8s-secret-env", "spec.template.spec.containers[0].env[0].value: found a literal value for 'HF_TOKEN' (value not shown); move it to a Secret (valueFrom.secretKeyRef) or a Key Vault CSI mount."),
    ("slm-k8s-stable-api", "bad-k8s-bare-pod", "kind: found a bare Pod; wrap it in a Deployment, StatefulSet or Job so it is rescheduled."),
    ("slm-pack-known-types", "bad-pack-classic-storage", "type: found 'azure:storage/account:Account' for this resource, which no policy of this pack reads (pulumi-azure classic: use the azure-native equivalent, which the pack reads); its settings are not checked. Use a type the pack reads, add rules for it (policies/rules/coverage.py), or exempt the resource with a written reason."),
    ("slm-pack-opaque-components", "bad-pack-helm-v4", "type: found Chart 'bad-pack-helm-v4' with no rendered objects in this stack; the provider renders them only at a real preview, so they were not checked here. Run `pulumi preview --policy-pack policies` (CI does), or use objects the program declares."),
    ("slm-k8s-helm-release-opaque", "bad-k8s-helm-grafana", "chart: found Helm Release of 'grafana'; its rendered objects are not checked by this pack. Review the chart values, or exempt it with a written reason."),
    ("slm-gpu-vm-sizes", "bad-gpu-t4-in-prod", "vmSize: found 'Standard_NC4as_T4_v3'; GPU pools here may use Standard_NV36ads_A10_v5, Standard_NC24ads_A100_v4, Standard_NC48ads_A100_v4, Standard_NC40ads_H100_v5."),
    ("slm-gpu-pool-autoscaling", "bad-gpu-fixed-size", "enableAutoScaling: found false; GPU pools must autoscale (set minCount/maxCount)."),
    ("slm-gpu-pool-node-cap", "bad-gpu-node-cap", "maxCount: found 9; at most 8 GPU nodes per pool here (raise maxGpuNodes in the policy config after a cost review)."),
    ("slm-gpu-pool-priority", "bad-gpu-spot", "scaleSetPriority: found 'Spot'; serving pools here use Regular capacity."),
    ("slm-gpu-pool-isolation", "bad-gpu-untainted", "nodeTaints: found unset; GPU pools must carry 'sku=gpu:NoSchedule' so only GPU workloads (which tolerate it) land there."),
    ("slm-gpu-workload-scheduling", "bad-gpu-two-gpus", "spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']: found 2; use 1..1 whole GPUs."),
    ("slm-gpu-non-gpu-tolerations", "bad-gpu-cpu-pod-tolerates", "spec.template.spec.tolerations: found a toleration for 'sku=gpu:NoSchedule' on a pod without GPUs; remove it so CPU pods do not hold GPU nodes."),
    ("slm-gpu-autoscaler-bounds", "bad-gpu-hpa-max", "spec.maxReplicas: found 20 for GPU workload 'ok-vllm'; at most 8 here."),
    ("slm-cost-foundry-deployment-sku", "bad-cost-foundry-capacity", "sku.capacity: found 5000; at most 1000 here (raise maxCapacity in the policy config after a cost review)."),
    ("slm-cost-required-tags", "bad-cost-untagged", "tags: found no environment, owner, costCenter, workload; pass the stack's tags (settings.tags) to this resource."),
    # The total depends on every pool's list price (catalog.VM_SKUS); the biggest line does not. The sum is the
    # stack's ("" : no resource), so exempting the biggest resource cannot silence it (test_gate_money.py).
    ("slm-cost-monthly-budget", "", "stack: estimated monthly cost: found $101,855 (upper bound: every pool and scale set at its maximum count, provisioned throughput at its PTUs) against a budget of $40,000: bad-cost-h100-pool (Standard_NC40ads_H100_v5 x 8) $40,763; ..."),
    ("slm-cost-monthly-budget", "bad-cost-unpriced", "cost: cannot price bad-cost-unpriced (ACI 4 vCPU, 16 GB, 1 V100 GPU): osType 'Windows' / sku 'Standard' (only Linux Standard groups are priced), so the monthly budget cannot be checked for it. Use a priced size or type, or add its list price to policies/rules/catalog.py with its source and date."),
    ("slm-cost-budget-headroom", "", "stack: estimated monthly cost: found $101,855, 255% of the budget of $40,000 (this warning starts at 80%; ..."),
    ("slm-ops-diagnostic-settings", "bad-aks-entra", "diagnosticSettings: found none for 'bad-aks-entra'; add a DiagnosticSetting with resourceUri set to its id and a workspaceId."),
    ("slm-ops-container-insights", "bad-ops-no-metrics", "azureMonitorProfile.metrics.enabled: found unset and no omsagent add-on; enable managed Prometheus (or Container Insights)."),
    ("slm-ops-container-insights", "bad-ops-short-retention", "retentionInDays: found 30; keep at least 365 days here."),
    ("slm-ops-inference-scraped", "bad-ops-unscraped", "metrics: found no ServiceMonitor or PodMonitor scraping 'bad-ops-unscraped'; add one so the vllm:* metrics and SLO alerts exist."),
    ("slm-ops-private-dashboards", "bad-ops-grafana-lb", "spec.type: found 'LoadBalancer' for a monitoring service; keep Grafana, Prometheus and Alertmanager on ClusterIP behind the authenticated gateway."),
    ("slm-ops-private-dashboards", "bad-ops-managed-grafana", "properties.publicNetworkAccess: found 'Enabled'; set 'Disabled' and use a private endpoint."),
    ("slm-ops-private-dashboards", "bad-k8s-helm-grafana", "values.adminPassword: found a literal password (not shown); reference an existing Secret (e.g. grafana.admin.existingSecret)."),
    ("slm-edge-artifact-pinned", "bad-edge-unpinned", "spec.template.spec.containers[0].image: found 'docker.io/ollama/ollama:0.12.6'; edge images are pinned by @sha256 digest."),
    ("slm-edge-device-envelope", "bad-edge-host-network", "spec.template.spec.hostNetwork: found true; edge pods use the pod network."),
    ("slm-edge-models-from-registry", "bad-edge-public-hub", "spec.template.spec.initContainers[0]: found a command that runs '/app/download.py'; edge devices load models only from the registry here. Use the registry fill init container (--registry) with the fleet's pull token."),
    ("slm-edge-iot-hub", "bad-edge-iot-local-auth", "properties.disableLocalAuth: found false; set it to true (devices use X.509, services use Entra ID)."),
    ("slm-serving-tool-call-parser", "bad-serving-no-parser", "spec.template.spec.containers[0].args: found --enable-auto-tool-choice without --tool-call-parser; vLLM answers tool calls with HTTP 400. Add the family's parser (Phi-4-mini 'phi4_mini_json', Qwen3 'hermes', Gemma 3 'pythonic')."),
    ("slm-serving-quantization-flag", "bad-serving-awq-flag", "spec.template.spec.containers[0].args: found --quantization awq for 'microsoft/Phi-4-mini-instruct', which is not an AWQ checkpoint; serve a pre-quantized repo and drop the flag (vLLM detects quantization from the checkpoint config)."),
    ("slm-serving-cuda-image-on-cpu", "bad-serving-cuda-on-cpu", "spec.template.spec.containers[0].image: found 'vllm/vllm-openai:v0.11.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' without resources.limits['nvidia.com/gpu']; that image is CUDA-only. Give it a GPU, or serve on CPU with Ollama or ONNX Runtime GenAI."),
    ("slm-serving-ollama-metrics", "bad-serving-ollama-servicemonitor", "spec.endpoints[0]: found a scrape of Ollama (port 'http'); Ollama serves no /metrics. Scrape the gateway or a sidecar exporter instead."),
    ("slm-serving-ollama-probes", "bad-serving-ollama-curl-probe", "spec.template.spec.containers[0].livenessProbe: found an exec curl; use httpGet on '/api/version' (the image has no curl and no /api/health route)."),
    ("slm-serving-api-key", "bad-serving-ollama-open", "spec.template.spec.containers[0]: found Ollama with no API-key gate in its pod; add a proxy container that reads ENGINE_API_KEY from a Secret (secretKeyRef) and holds the pod's serving port."),
    ("slm-serving-api-key", "bad-serving-ollama-open", "spec.template.spec.containers[0].env.OLLAMA_HOST: found '0.0.0.0:11434', so Ollama (which checks no API key) listens on the pod's address; set '127.0.0.1:11434' and put an API-key gate (components/engines/auth_proxy.py) in front of it."),
    ("slm-serving-ollama-env", "bad-serving-ollama-bogus-env", "spec.template.spec.containers[0].env[0].name: found 'OLLAMA_NUM_CTX', which Ollama does not read; use OLLAMA_NUM_PARALLEL / OLLAMA_CONTEXT_LENGTH / Modelfile 'PARAMETER num_ctx' instead."),
    ("slm-serving-no-foundry-local-container", "bad-serving-foundry-local", "spec.template.spec.containers[0].image: found 'mcr.microsoft.com/foundry-local/runtime:0.7@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaa...'; Foundry Local has no container (CLI 'foundry', Windows/macOS only). Serve with Ollama or ONNX Runtime GenAI, or deliver Foundry Local as a device bootstrap script."),
    ("slm-serving-autoscaling-metric", "bad-serving-hpa-gpu-util", "spec.metrics[0]: found scaling on 'DCGM_FI_DEV_GPU_UTIL' utilization; GPU utilization sits near 100% while batching. Scale on vllm:num_requests_waiting (queue depth)."),
    ("slm-serving-autoscaling-metric", "bad-serving-keda-gpu-util", "spec.triggers[0]: found a 'prometheus' utilization trigger; scale on vllm:num_requests_waiting (queue depth) instead."),
    ("slm-serving-trust-remote-code", "bad-serving-trust-remote-code", "spec.template.spec.containers[0].args: found --trust-remote-code for 'microsoft/Phi-4-mini-instruct'; it runs the repo's Python in the server. Remove it, or allow-list the model in allowTrustRemoteCode after review."),
    ("slm-serving-dev-mode", "bad-serving-dev-mode", "spec.template.spec.containers[0].env: found VLLM_SERVER_DEV_MODE; remove it, it exposes development endpoints."),
    ("slm-serving-log-stats", "bad-serving-no-log-stats", "spec.template.spec.containers[0].args: found --disable-log-stats; remove it or the vllm:* metrics disappear."),
    ("slm-serving-bounded-context", "bad-serving-unbounded", "spec.template.spec.containers[0].args: found no --max-model-len; bound it (e.g. 16384) so the server starts on its GPU."),
    ("slm-serving-memory-fit", "bad-serving-context-too-long", "spec.template.spec.containers[0].args: found --max-model-len 131072, which needs 16.0 GiB of KV cache after 7.15 GiB of weights on a 16 GiB GPU; vLLM would fail at start. Lower it to at most 47083 or use a larger GPU."),
    ("slm-k8s-pod-placement", "bad-sched-spot-untolerated", "spec.template.spec: bad-sched-spot-untolerated selects only pools whose taints it does not tolerate: pool 'badgpuspot' (bad-gpu-spot) has 'kubernetes.azure.com/scalesetpriority=spot:NoSchedule' (AKS adds it to every Spot pool); add {key: kubernetes.azure.com/scalesetpriority, operator: Equal, value: spot, effect: NoSchedule}."),
    ("slm-gpu-node-agents", "bad-sched-agent-no-spot", "spec.template.spec: bad-sched-agent-no-spot does not tolerate 'kubernetes.azure.com/scalesetpriority=spot:NoSchedule' of GPU pool 'badgpuspot' (bad-gpu-spot) (AKS adds it to every Spot pool), so nvidia.com/gpu is never advertised there and GPU pods stay Pending; add {key: kubernetes.azure.com/scalesetpriority, operator: Equal, value: spot, effect: NoSchedule}."),
    ("slm-gpu-pool-capacity", "bad-sched-full-pool", "nvidia.com/gpu: found 4 GPU needed on pool 'badschedfull' (bad-sched-full-pool) Standard_NC24ads_A100_v4 x max 1 = 1 GPU at most, by sched-model-a 2 GPU (max 2 from spec.replicas x 1 GPU); sched-model-b 2 GPU (max 2 from spec.replicas x 1 GPU); pods beyond it stay Pending and rollouts never finish. Fix: raise the pool's max_count, lower the deployments' max replicas, or roll with maxSurge 0 / maxUnavailable 1."),
    ("slm-k8s-helm-chart-exists", "bad-exist-chart-version", "version: found '81.4.5' for chart 'kube-prometheus-stack', which the index of https://prometheus-community.github.io/helm-charts does not list (committed entries: 81.4.3; copied 2026-12-03); `helm install` fails with 'chart not found'. Pin a version the repository publishes and refresh with python scripts/refresh_helm_index.py."),
    ("slm-foundry-model-offered", "bad-foundry-data-zone-phi", "sku.name: found 'DataZoneStandard' for Phi-4-mini-instruct version 1, which is offered only as GlobalStandard (https://learn.microsoft.com/azure/foundry/foundry-models/concepts/models-from-partners#microsoft; https://ai.azure.com/explore/models/Phi-4-mini-instruct/version/1/registry/azureml); Azure refuses the deployment. Use GlobalStandard."),
    ("slm-serving-container-args", "bad-serving-onnx-args", "spec.template.spec.containers[0].args: the ONNX server (components/engines/onnx_server/server.py) refuses ['--model-dir', '/models/cpu']: the following arguments are required: --served-model-name; the container exits at start. Pass what build_parser() requires."),
    ("slm-ops-alert-routing", "bad-alert-unrouted", "rules[0] ('SlmModelServerDown').actions: found none; name the action group of its severity (settings monitoring.routes) so the alert reaches a receiver."),
    ("slm-reach-deployer", "bad-deployer-acr", "publicNetworkAccess: Disabled on 'bad-deployer-acr', so the image push needs a private path, and the deployer is the in-VNet runner 'ok-deploy-runner' (VNet reach); add a private endpoint (group 'registry') in the runner's VNet and the privatelink.azurecr.io zone linked to it."),
    ("slm-serving-shared-memory", "bad-serving-no-shm", "spec.template.spec.containers[0].volumeMounts: found no memory-backed /dev/shm; mount an emptyDir with medium 'Memory' and a sizeLimit at /dev/shm."),
    # System invariants: each names both ends of the broken relation and the fix.
    ("slm-reach-metrics-scraper", "bad-reach-managed-scrape", "network: 'bad-reach-managed-scrape' is scraped by Azure Managed Prometheus (ama-metrics) from namespace 'kube-system', but the NetworkPolicies guarding port 8080 of 'ok-reach-app' ('ok-reach-allow-monitoring', 'ok-reach-deny') admit no traffic from it, so no metrics arrive (autoscaling and SLO alerts go blind); add an ingress rule from namespaceSelector kubernetes.io/metadata.name=kube-system and podSelector rsName=ama-metrics on port 8080."),
    ("slm-reach-firewalled-data", "bad-reach-kv-firewall", "network: the CSI driver for 'ok-reach-spc-firewalled' on 'ok-reach-aks' calls 'bad-reach-kv-firewall', but its firewall denies by default and admits neither the cluster's subnet nor a private endpoint (IP rules cannot admit the cluster: its outbound IP is assigned by Azure); add a virtual-network rule for subnet 'ok-reach-snet' with the Microsoft.KeyVault service endpoint on that subnet, or give it a private endpoint ..."),
    ("slm-reach-private-dns", "bad-reach-iot-hub-no-pe", "publicNetworkAccess: found 'Disabled' on 'bad-reach-iot-hub-no-pe' but no private endpoint (group 'iotHub') targets it; add an azure-native:network:PrivateEndpoint with privateLinkServiceId its id and a DNS zone group for privatelink.azure-devices.net; otherwise no client can resolve or reach it."),
    ("slm-identity-create-time-grants", "bad-identity-grants-parallel", "dependsOn: 'bad-identity-grants-parallel' is created in parallel with 'ok-reach-mio' ('Managed Identity Operator' on 'ok-reach-id-kubelet' for 'ok-reach-id-cp'), which AKS needs at creation; add 'ok-reach-mio' to 'bad-identity-grants-parallel''s depends_on."),
    ("slm-identity-kubelet-acr-pull", "bad-identity-acr-no-pull", "identity: 'ok-reach-puller-2' pulls its image from 'bad-identity-acr-no-pull', but the kubelet of 'ok-reach-aks' ('ok-reach-id-kubelet') has no AcrPull there (ErrImagePull 401); add an azure-native:authorization:RoleAssignment of 'AcrPull' with scope 'bad-identity-acr-no-pull''s id and principalId 'ok-reach-id-kubelet'.principalId."),
    ("slm-identity-secrets-reader", "bad-identity-spc-no-role", "identity: SecretProviderClass 'bad-identity-spc-no-role' reads 'ok-reach-kv' as 'ok-reach-wi-unprivileged', which has no 'Key Vault Secrets User' there (the CSI mount fails with 403 and the pod never starts); add an azure-native:authorization:RoleAssignment of 'Key Vault Secrets User' with scope 'ok-reach-kv''s id and principalId 'ok-reach-wi-unprivileged'.principalId."),
    ("slm-identity-keda-metrics-reader", "bad-identity-keda-no-reader", "identity: 'bad-identity-keda-no-reader' queries 'ok-reach-amw' as 'ok-reach-keda-2' (TriggerAuthentication 'ok-reach-keda-auth-2'), which has no 'Monitoring Data Reader' there; KEDA never scales; add an azure-native:authorization:RoleAssignment of 'Monitoring Data Reader' with scope 'ok-reach-amw''s id and principalId 'ok-reach-keda-2'.principalId."),
    ("slm-identity-deployer-grants", "bad-identity-deployer-aks", "identity: the deployer writes Kubernetes objects of 'bad-identity-deployer-aks' ('bad-identity-deployer-k8s') but holds no 'Azure Kubernetes Service RBAC Cluster Admin' there; add a RoleAssignment of 'Azure Kubernetes Service RBAC Cluster Admin' scoped to 'bad-identity-deployer-aks' for the deploying principal (getClientConfig().objectId) with a description starting 'deployer:'."),
    ("slm-identity-grafana-users", "bad-identity-grafana-no-admin", "identity: nobody holds 'Grafana Admin' on 'bad-identity-grafana-no-admin', so nobody can sign in or manage it; grant it (and Grafana Viewer) to the people's Entra groups (settings monitoring.grafana_admin_group_object_ids / grafana_viewer_group_object_ids)."),
    ("slm-conflict-diagnostic-sinks", "bad-conflict-diag-twice", "diagnostic setting 'bad-conflict-diag-twice' sends kube-audit-admin of 'ok-reach-aks' to the same destination as 'ok-reach-aks-diag'; Azure rejects the second (Conflict: data sink already used). Keep one setting per resource and destination: remove one of them or the overlapping categories."),
    ("slm-conflict-unique-names", "bad-conflict-kv-name", "vaultName: found 'ok-kv', which 'ok-kv' already uses in all of Azure; the second create fails or overwrites the first. Give one of them another name."),
)

XFAIL: dict[str, str] = {}
"""Policies that do not fire on an input that clearly violates them (rule bugs found by this matrix go
here with the reason until fixed; slm-edge-iot-hub was one: it matched a token azure-native never sends)."""

NOT_FIRED: dict[str, str] = {**XFAIL}
"""Policies allowed to stay silent on the matrix, with the reason. Every policy is enabled under the prod
levels and expressible on preview inputs, so only open rule bugs would be listed."""

ALSO_FIRES: dict[str, set[str]] = {
    # Breaking one setting of a baseline can legitimately trip a sibling policy reading the same input.
    "bad-aks-entra": {"slm-aks-azure-rbac"},  # enableAzureRBAC sits in the removed aadProfile
    "bad-k8s-latest": {"slm-k8s-image-digest"},
    "bad-k8s-default-namespace": {"slm-k8s-network-policy-coverage", "slm-k8s-disruption-budget"},
    "bad-k8s-uncovered": {"slm-k8s-disruption-budget"},  # the baseline PDB lives in 'inference'
    "bad-k8s-helm-grafana": {"slm-ops-private-dashboards", "slm-k8s-helm-chart-exists"},  # repo not indexed
    "bad-exist-chart-version": {"slm-k8s-helm-release-opaque"},
    "bad-pack-helm-v4": {"slm-k8s-helm-chart-exists"},  # an OCI registry has no index we hold
    "bad-foundry-model": {"slm-foundry-model-offered"},  # gpt-4o has no recorded offer
    "bad-ops-grafana-lb": {"slm-k8s-service-exposure"},
    # The two also lack the registry fill step (built before it existed; their own case is bad-edge-public-hub).
    "bad-edge-unpinned": {"slm-k8s-image-digest", "slm-edge-models-from-registry",
                          "slm-serving-api-key"},  # an Ollama image with no gate
    "bad-edge-host-network": {"slm-k8s-pss-baseline", "slm-edge-artifact-pinned", "slm-edge-models-from-registry"},
    "bad-deployer-acr": {"slm-identity-deployer-grants"},  # the push has no AcrPush grant either (same relation)
}
"""Per bad resource: other policies expected to fire on it besides its own (and the stack noise below)."""
STACK_NOISE = {"slm-ops-diagnostic-settings", "slm-foundry-private-endpoint", "slm-keyvault-private-endpoint",
               "slm-reach-private-dns"}
"""Bad accounts, clusters, vaults, registries and storage get no diagnostic setting or private endpoint (and DNS)
(kept out of the baselines)."""


STACK_SUMS = {"slm-cost-monthly-budget", "slm-cost-budget-headroom"}
"""Policies whose finding is a sum over the whole stack, reported on no resource."""


@pytest.fixture(scope="module")
def matrix() -> Recording:
    return record(matrix_program, stack="prod")


@pytest.fixture(scope="module")
def result(matrix: Recording, tmp_path_factory: pytest.TempPathFactory) -> GateResult:
    # The pack trusts the stack's own ACR (<name_prefix>acr.azurecr.io, from its settings), never '*.azurecr.io'.
    # The matrix has no settings, so the registries it declares itself are listed like a reviewer would.
    config = environment_config("prod")
    provenance = dict(config["slm-k8s-image-provenance"]) if isinstance(config["slm-k8s-image-provenance"], dict) \
        else {"enforcementLevel": config["slm-k8s-image-provenance"]}
    provenance["allowedRegistries"] = [*DEFAULT_REGISTRIES, "okreachacr.azurecr.io", "badidentityacrnopull.azurecr.io",
                                      "okedgeacr.azurecr.io"]
    config["slm-k8s-image-provenance"] = provenance
    pinned = config["slm-edge-artifact-pinned"]
    pinned = dict(pinned) if isinstance(pinned, dict) else {"enforcementLevel": pinned}
    pinned["edgeRegistries"] = ["okedgeacr.azurecr.io"]
    config["slm-edge-artifact-pinned"] = pinned
    path = tmp_path_factory.mktemp("matrix") / "prod.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return run_gate(matrix, environment="prod", config_path=path)


def _on(result: GateResult, policy: str, resource: str) -> list[Violation]:
    return [v for v in result.violations if v.policy == policy and v.resource == resource]


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}@{case[1]}"


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL[c[0]])) if c[0] in XFAIL else c
    for c in CASES], ids=_case_id)
def test_policy_reports_its_exact_violation_on_the_intended_resource(result: GateResult,
                                                                      case: tuple[str, str, str]) -> None:
    policy, resource, message = case
    found = _on(result, policy, resource)
    assert found, f"{policy} did not report {resource}; it reported: {[v.resource for v in result.violations if v.policy == policy]}"
    spec = next(s for s in SPECS if s.name == policy)
    assert {v.level for v in found} == {spec.level("prod")}
    details = [v.detail.removeprefix(f"{v.resource} ({v.type}): ") for v in found]
    if message.endswith("..."):
        assert any(d.startswith(message[:-3]) for d in details), details
    else:
        assert message in details, details


def test_every_policy_has_a_case() -> None:
    assert {s.name for s in SPECS} == {c[0] for c in CASES}
    assert len(set(CASES)) == len(CASES)


def test_the_policies_that_fired_are_all_but_the_listed_exceptions(result: GateResult) -> None:
    fired = {v.policy for v in result.violations}
    assert fired == {s.name for s in SPECS} - set(NOT_FIRED)
    assert result.exit_code == 1
    assert len(fired) == len(SPECS) - len(NOT_FIRED)


def test_each_bad_resource_breaks_only_what_it_was_built_to_break(result: GateResult) -> None:
    intended: dict[str, set[str]] = {}
    for policy, resource, _ in CASES:
        if policy != "slm-ops-diagnostic-settings" and resource:  # "": a finding of the stack (the budget sums)
            intended.setdefault(resource, set()).add(policy)
    for resource, policies in intended.items():
        fired = {v.policy for v in result.violations if v.resource == resource} - STACK_NOISE
        allowed = (policies | ALSO_FIRES.get(resource, set())) - STACK_NOISE - set(XFAIL)
        assert fired == allowed, resource


def test_compliant_fixtures_have_no_violations(result: GateResult, matrix: Recording) -> None:
    ok = [r.name for r in matrix.registrations if r.name.startswith("ok-")]
    assert len(ok) >= 20
    assert [(v.policy, v.resource, v.detail) for v in result.violations if v.resource.startswith("ok-")] == []
    # Resource-less findings are only the namespace-wide ones the bad workloads cause.
    assert {v.detail for v in result.violations if not v.resource and v.policy not in STACK_SUMS} == {
        f"stack: namespace {ns!r}: found no default-deny {kind} NetworkPolicy; add one with an empty podSelector "
        f"and policyTypes [{kind}]." for ns in ("default", "uncovered") for kind in ("Ingress", "Egress")}


def test_the_fake_token_is_never_echoed(result: GateResult) -> None:
    assert not any(FAKE_HF_TOKEN in v.message for v in result.violations)
