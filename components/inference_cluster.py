"""InferenceCluster: the AKS cluster models are served on, with its GPU/CPU pools and node agents.

The serving workloads themselves are ``components.serving_workloads.ServingWorkloads``: they run on this
cluster through ``kube_provider``, or on any other cluster (the ``local`` tier's kubeconfig context).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerservice, managedidentity

from components._security import namespace_labels
from components._standard import (
    DiagnosticSetting,
    RoleAssignment,
    StandardInterfaces,
    apply_diagnostic_settings,
    apply_lock,
    apply_role_assignments,
)
from components.domain import NodePool, SystemPool
from components.domain.catalogue import VM_SKUS
from components.kubeconfig import non_interactive
from components.monitoring.helm_values import GPU_NODE_AGENT_TOLERATIONS
from components.serving_workloads import GPU_TAINT, PART_OF, SPOT_TAINT_KEY, service_account_subject

TYPE_TOKEN: Final = "slm:compute:InferenceCluster"  # noqa: S105 (a Pulumi type token)
SYSTEM_TAINT: Final = "CriticalAddonsOnly=true:NoSchedule"
TOKEN_AUDIENCE: Final = "api://AzureADTokenExchange"  # noqa: S105 (Entra's fixed audience)
APP_ROUTING_CLASS: Final = "webapprouting.kubernetes.azure.com"
APP_ROUTING_NAMESPACE: Final = "app-routing-system"
GPU_OPERATOR_CHART_VERSION: Final = "v25.3.0"
"""NVIDIA GPU Operator chart version (helm.ngc.nvidia.com/nvidia). Pinned; bump deliberately."""
GPU_OPERATOR_REPO: Final = "https://helm.ngc.nvidia.com/nvidia"
DEVICE_PLUGIN_CHART_VERSION: Final = "0.17.1"
"""NVIDIA k8s-device-plugin chart (seen pinned in public Terraform; verify with ``helm search repo``)."""
DEVICE_PLUGIN_REPO: Final = "https://nvidia.github.io/k8s-device-plugin"


# --------------------------------------------------------------------------- args


@dataclass(frozen=True, kw_only=True)
class KubeletIdentity:
    """The user-assigned identity the nodes (kubelet) use, e.g. to pull from ACR."""

    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    object_id: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentity:
    """A user-assigned identity one serving workload's service account federates to."""

    name: pulumi.Input[str]
    """The identity's resource name (the federated credential is its child)."""
    resource_group_name: pulumi.Input[str]
    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class InferenceClusterArgs(StandardInterfaces):
    """Inputs of ``InferenceCluster``: the ids it joins, its pools, and the cluster-wide switches.

    ``tags`` go on the cluster and its pools; ``lock`` is created on the cluster after every pool;
    ``role_assignments`` are scoped to the cluster (the Kubernetes provider waits for them, so a grant
    the deployer needs to apply objects is in place first); ``diagnostic_settings`` are added to the
    ``audit`` setting the component always creates.
    """

    name_prefix: str
    """Physical names: ``<prefix>-aks`` (also the DNS prefix), node resource group ``<prefix>-aks-nodes``."""
    location: str
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    """Role-assignment ids are built from it."""
    tenant_id: pulumi.Input[str]
    """The Entra tenant of the managed AAD integration."""
    aks_subnet_id: pulumi.Input[str]
    """The subnet every pool joins (Azure CNI overlay: pods take addresses from the overlay, not from it)."""
    control_plane_identity_id: pulumi.Input[str]
    """Resource id of the control plane's user-assigned identity (needs Managed Identity Operator
    on the kubelet identity and Network Contributor on the subnet; granted by the caller)."""
    kubelet_identity: KubeletIdentity
    log_analytics_workspace_id: pulumi.Input[str]
    """Container Insights, Defender and the audit diagnostic setting write here."""
    prerequisites: Sequence[pulumi.Resource] = ()
    """Default: none. What AKS needs before it creates the cluster, typically the two grants above
    (``Foundation.aks_prerequisites``): the cluster waits for them (``depends_on``), else the create races
    them and fails on a bring-your-own kubelet identity or subnet it may not yet use."""
    kubernetes_version: str | None = None
    """Default: the AKS default version for the region at creation time (pin it; the channels still apply)."""
    sku_tier: str = "Standard"
    """Default: ``Standard`` (the uptime SLA). ``Free`` has none; ``Premium`` adds long-term support."""
    system_pool: SystemPool = field(default_factory=SystemPool)
    """Default: ``SystemPool()``'s size and count, no zones. Inline, ``mode: System``, tainted ``CriticalAddonsOnly``."""
    pools: Mapping[str, NodePool] = field(default_factory=dict[str, NodePool])
    """Default: none. One autoscaled ``AgentPool`` each, keyed by its name (GPU pools tainted ``sku=gpu:NoSchedule``)."""
    admin_group_object_ids: Sequence[str] = ()
    """Default: none. Entra groups that are cluster admins (Azure RBAC; local accounts are off)."""
    private_api_server: bool = True
    """Default: a private API server, reachable only from the VNet. ``False``: a public one that admits only
    ``authorized_ip_ranges`` and ``deployer_egress_cidrs`` (empty is an error: it would be open to all)."""
    authorized_ip_ranges: Sequence[str] = ()
    """Default: none. The CIDRs a public API server admits."""
    deployer_egress_cidrs: Sequence[pulumi.Input[str]] = ()
    """Default: none. CIDRs ``pulumi up`` reaches a public API server from (e.g. the in-VNet runner's NAT IP);
    added to ``authorized_ip_ranges`` so the deployer can apply the Kubernetes resources."""
    internal_gateway: bool = True
    """Default: the app-routing add-on's NGINX controller gets an internal load balancer (no public IP).
    ``False``: ``External``."""
    upgrade_channel: str = "stable"
    """Default: ``stable``: AKS upgrades to the latest patch of the N-1 minor version."""
    node_os_upgrade_channel: str = "NodeImage"
    """Default: ``NodeImage``: weekly node image upgrades."""
    defender_enabled: bool = False
    """Default: no Microsoft Defender for Containers (billed per vCore). ``True``: it reports to the workspace."""
    azure_monitor_metrics_enabled: bool = False
    """Default: off. ``True``: the Azure Monitor metrics add-on (``ama-metrics``, Azure Managed Prometheus)."""
    gpu_operator: bool = False
    """Default: AKS installs the NVIDIA driver on GPU nodes and the component installs the NVIDIA device
    plugin. ``True``: GPU pools get no driver and the NVIDIA GPU Operator (driver, toolkit, DCGM) is installed."""
    workload_identities: Mapping[str, WorkloadIdentity] = field(default_factory=dict[str, WorkloadIdentity])
    """Default: none. Keyed by serving deployment name: each identity gets a federated credential for the
    service account ``ServingWorkloads`` creates (``system:serviceaccount:slm-<name>:<name>``)."""
    keda_identity: WorkloadIdentity | None = None
    """Default: none. With Azure Managed Prometheus, the identity KEDA queries the workspace with: it is
    federated to KEDA's operator service account (``kube-system:keda-operator``)."""
    gateway_certificate_vault_id: pulumi.Input[str] | None = None
    """Default: none. The vault holding the gateway's TLS certificate: the app-routing add-on's identity gets
    *Key Vault Certificate User* on it (``certificate_grants``), as ``az aks approuting update --attach-kv`` does."""


def api_server_access(args: InferenceClusterArgs) -> containerservice.ManagedClusterAPIServerAccessProfileArgs:
    """Private API server, or a public one restricted to the listed CIDRs (and the deployer's); never open to all."""
    if args.private_api_server:
        return containerservice.ManagedClusterAPIServerAccessProfileArgs(
            enable_private_cluster=True, enable_private_cluster_public_fqdn=False, disable_run_command=True)
    return containerservice.ManagedClusterAPIServerAccessProfileArgs(
        authorized_ip_ranges=[*args.authorized_ip_ranges, *args.deployer_egress_cidrs], disable_run_command=True)


def validation_errors(args: InferenceClusterArgs) -> list[str]:
    """Every reason the cluster cannot be built as asked, naming the field, value and fix."""
    errors: list[str] = []
    if not args.private_api_server and not args.authorized_ip_ranges:
        errors.append("authorized_ip_ranges: empty on a public API server would open it to the internet; list "
                      "your office/CI CIDRs or set private_api_server")
    for pool_name, pool in sorted(args.pools.items()):
        if pool.vm_size not in VM_SKUS:
            errors.append(f"pools.{pool_name}.vm_size: {pool.vm_size!r} is not in the VM catalogue")
    return errors


def gpu_operator_values() -> dict[str, Any]:
    """Typed, pinned values for the NVIDIA GPU Operator chart (driver + toolkit + DCGM exporter)."""
    tolerations = [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": SPOT_TAINT_KEY, "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
    ]
    return {
        "driver": {"enabled": True},
        "toolkit": {"enabled": True},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": False}},
        "migManager": {"enabled": False},
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": {"worker": {"tolerations": tolerations}},
    }


# --------------------------------------------------------------------------- the component


class InferenceCluster(pulumi.ComponentResource):
    """AKS for model serving.

    Creates: one ``ManagedCluster`` (system pool inline, tainted ``CriticalAddonsOnly``; managed Entra ID +
    Azure RBAC, local accounts off; Azure CNI overlay with Cilium; OIDC issuer and workload identity; Key
    Vault CSI with rotation, Azure Policy, Container Insights, KEDA, app routing; private or IP-restricted
    API server; encryption at host; Defender when enabled), one ``AgentPool`` per ``pools`` entry (GPU pools
    tainted ``sku=gpu:NoSchedule``, autoscaled, no public IPs), one federated credential per workload
    identity (and KEDA's), the audit diagnostic setting, role assignments and lock, the gateway certificate
    grant, a Kubernetes provider with a non-interactive kubeconfig, and on GPU pools the NVIDIA device plugin
    (or the GPU Operator).
    """

    _type_token: ClassVar[str] = TYPE_TOKEN
    """Our stacks' token; the component package constructs it as ``slm:index:InferenceCluster``."""

    cluster: containerservice.ManagedCluster
    """Escape hatch: the AKS resource."""
    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kube_provider: k8s.Provider
    """Applies Kubernetes objects to this cluster with the deployer's Entra token (after ``role_assignments``)."""
    pools: dict[str, containerservice.AgentPool]
    certificate_grants: list[pulumi.Resource]
    """The app-routing add-on's read grant on ``gateway_certificate_vault_id`` (Ingresses wait for it)."""
    gateway_ingress_class: str
    """``webapprouting.kubernetes.azure.com``: the app-routing add-on's ingress class."""
    gateway_namespace: str
    """``app-routing-system``: where the add-on's NGINX runs (its pods reach the serving ports)."""

    def __init__(self, name: str, args: InferenceClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        errors = validation_errors(args)
        if errors:
            msg = f"InferenceCluster {name!r}:\n" + "\n".join(f"- {e}" for e in errors)
            raise ValueError(msg)
        super().__init__(self._type_token, name, None, opts)
        self._args = args
        self.gateway_ingress_class = APP_ROUTING_CLASS
        self.gateway_namespace = APP_ROUTING_NAMESPACE
        self.cluster = self._managed_cluster(name, args)
        self.cluster_name = self.cluster.name
        self.cluster_id = self.cluster.id
        self.oidc_issuer_url = self.cluster.oidc_issuer_profile.apply(
            lambda p: p.issuer_url if p is not None and p.issuer_url else "")
        self.pools = {pool_name: self._pool(name, pool_name, pool, args)
                      for pool_name, pool in sorted(args.pools.items())}
        self._federated_credentials(name, args)
        grants = self._standard_interfaces(name, args)
        self.certificate_grants = self._certificate_grant(name, args)
        self.kube_provider = self._kube_provider(name, args, grants)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.kube_provider)
        if any(VM_SKUS[p.vm_size].is_gpu for p in args.pools.values()):
            if args.gpu_operator:
                self._gpu_operator(name, k8s_opts)
            else:
                # AKS installs the driver on GPU nodes but not the device plugin that advertises
                # nvidia.com/gpu to the scheduler; without it no GPU pod is ever scheduled.
                self._device_plugin(name, k8s_opts)
        self.register_outputs({"cluster_name": self.cluster_name, "cluster_id": self.cluster_id,
                               "oidc_issuer_url": self.oidc_issuer_url})

    # -- Azure ---------------------------------------------------------------------------

    @staticmethod
    def _addons(args: InferenceClusterArgs) -> dict[str, containerservice.ManagedClusterAddonProfileArgs]:
        return {
            "azureKeyvaultSecretsProvider": containerservice.ManagedClusterAddonProfileArgs(
                enabled=True, config={"enableSecretRotation": "true", "rotationPollInterval": "2m"}),
            "azurepolicy": containerservice.ManagedClusterAddonProfileArgs(enabled=True),
            "omsagent": containerservice.ManagedClusterAddonProfileArgs(
                enabled=True, config={"logAnalyticsWorkspaceResourceID": args.log_analytics_workspace_id,
                                      "useAADAuth": "true"}),
        }

    @staticmethod
    def _security(args: InferenceClusterArgs) -> containerservice.ManagedClusterSecurityProfileArgs:
        return containerservice.ManagedClusterSecurityProfileArgs(
            workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
            image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                enabled=True, interval_hours=48),
            defender=containerservice.ManagedClusterSecurityProfileDefenderArgs(
                log_analytics_workspace_resource_id=args.log_analytics_workspace_id,
                security_monitoring=containerservice.ManagedClusterSecurityProfileDefenderSecurityMonitoringArgs(
                    enabled=True)) if args.defender_enabled else None,
        )

    @staticmethod
    def _system_pool(args: InferenceClusterArgs) -> containerservice.ManagedClusterAgentPoolProfileArgs:
        system = args.system_pool
        return containerservice.ManagedClusterAgentPoolProfileArgs(
            name="system", mode="System", vm_size=system.vm_size, count=system.count,
            availability_zones=list(system.zones) or None, node_taints=[SYSTEM_TAINT], os_type="Linux",
            os_sku="AzureLinux", type="VirtualMachineScaleSets", vnet_subnet_id=args.aks_subnet_id,
            enable_node_public_ip=False, enable_encryption_at_host=True,
            orchestrator_version=args.kubernetes_version,
            upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
        )

    def _managed_cluster(self, name: str, args: InferenceClusterArgs) -> containerservice.ManagedCluster:
        return containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=f"{args.name_prefix}-aks",
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=f"{args.name_prefix}-aks",
            kubernetes_version=args.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=args.sku_tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.control_plane_identity_id]),
            identity_profile={"kubeletidentity": containerservice.UserAssignedIdentityArgs(
                resource_id=args.kubelet_identity.resource_id, client_id=args.kubelet_identity.client_id,
                object_id=args.kubelet_identity.object_id)},
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True, enable_azure_rbac=True, tenant_id=args.tenant_id,
                admin_group_object_ids=list(args.admin_group_object_ids)),
            api_server_access_profile=api_server_access(args),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay", network_dataplane="cilium",
                network_policy="cilium", load_balancer_sku="standard", outbound_type="loadBalancer"),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=self._security(args),
            addon_profiles=self._addons(args),
            workload_auto_scaler_profile=containerservice.ManagedClusterWorkloadAutoScalerProfileArgs(
                keda=containerservice.ManagedClusterWorkloadAutoScalerProfileKedaArgs(enabled=True)),
            # Private tiers: the add-on's default NGINX controller gets an internal load balancer.
            ingress_profile=containerservice.ManagedClusterIngressProfileArgs(
                web_app_routing=containerservice.ManagedClusterIngressProfileWebAppRoutingArgs(
                    enabled=True, nginx=containerservice.ManagedClusterIngressProfileNginxArgs(
                        default_ingress_controller_type="Internal" if args.internal_gateway else "External"))),
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True))
            if args.azure_monitor_metrics_enabled else None,
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=args.upgrade_channel, node_os_upgrade_channel=args.node_os_upgrade_channel),
            node_resource_group=f"{args.name_prefix}-aks-nodes",
            agent_pool_profiles=[self._system_pool(args)],
            tags=dict(args.tags),
            # The inline system pool is create-only; later pools are AgentPools. Editing the inline
            # profile puts every pool into Scaling (pulumi-azure-native#4264, #2719).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["agentPoolProfiles"],
                                        depends_on=list(args.prerequisites)),
        )

    def _federated_credentials(self, name: str, args: InferenceClusterArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        for dep_name, wi in sorted(args.workload_identities.items()):
            managedidentity.FederatedIdentityCredential(
                f"{name}-fic-{dep_name}",
                resource_name_=wi.name,
                resource_group_name=wi.resource_group_name,
                federated_identity_credential_resource_name=f"{args.name_prefix}-aks-{dep_name}",
                issuer=self.oidc_issuer_url,
                subject=service_account_subject(dep_name),
                audiences=[TOKEN_AUDIENCE],
                opts=child,
            )
        if args.keda_identity is not None:
            managedidentity.FederatedIdentityCredential(
                f"{name}-fic-keda",
                resource_name_=args.keda_identity.name,
                resource_group_name=args.keda_identity.resource_group_name,
                federated_identity_credential_resource_name=f"{args.name_prefix}-aks-keda-operator",
                issuer=self.oidc_issuer_url,
                subject="system:serviceaccount:kube-system:keda-operator",
                audiences=[TOKEN_AUDIENCE],
                opts=child,
            )

    def _standard_interfaces(self, name: str, args: InferenceClusterArgs) -> list[pulumi.Resource]:
        """The audit diagnostic setting (plus the caller's), role assignments, then the lock; returns the grants."""
        diagnostics: dict[str, DiagnosticSetting] = {
            "audit": DiagnosticSetting(workspace_resource_id=args.log_analytics_workspace_id,
                                       log_categories=("kube-audit-admin", "guard"), metrics_enabled=False),
            **dict(args.diagnostic_settings),
        }
        apply_diagnostic_settings(self, name, resource_id=self.cluster.id, settings=diagnostics)
        grants = list[pulumi.Resource](apply_role_assignments(self, name, scope_id=self.cluster.id,
                                             subscription_id=args.subscription_id,
                                             assignments=args.role_assignments))
        apply_lock(self, name, scope_id=self.cluster.id, lock=args.lock, depends_on=list(self.pools.values()))
        return grants

    def _certificate_grant(self, name: str, args: InferenceClusterArgs) -> list[pulumi.Resource]:
        if args.gateway_certificate_vault_id is None:
            return []
        # The add-on reads the gateway certificate with its own identity (what `az aks approuting update
        # --attach-kv` grants); without it NGINX serves its fake certificate.
        routing_identity = self.cluster.ingress_profile.apply(
            lambda p: p.web_app_routing.identity.object_id if p and p.web_app_routing
            and p.web_app_routing.identity and p.web_app_routing.identity.object_id else "")
        return list[pulumi.Resource](apply_role_assignments(
            self, f"{name}-gateway-cert", scope_id=args.gateway_certificate_vault_id,
            subscription_id=args.subscription_id,
            assignments={"app-routing": RoleAssignment(role="Key Vault Certificate User",
                                                       principal_id=routing_identity)}))

    def _kube_provider(self, name: str, args: InferenceClusterArgs,
                       grants: Sequence[pulumi.Resource]) -> k8s.Provider:
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name, resource_name=self.cluster.name, format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self))
        # Azure answers an exec kubeconfig that runs `kubelogin get-token --login devicecode` (interactive: it
        # would wait for a browser in CI). Convert it as `kubelogin convert-kubeconfig -l azurecli` does: the
        # token then comes from the deployer's Azure CLI session (azure/login with OIDC in the workflows).
        # kubelogin must be on PATH (Entra ID auth; local accounts are off).
        kubeconfig = pulumi.Output.secret(credentials.kubeconfigs.apply(
            lambda kcs: non_interactive(base64.b64decode(kcs[0].value).decode()) if kcs else ""))
        # Every Kubernetes write waits for the cluster-scoped grants (the deployer's RBAC Cluster Admin).
        return k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig,
                            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster, *grants]))

    def _pool(self, name: str, pool_name: str, pool: NodePool, args: InferenceClusterArgs,
              ) -> containerservice.AgentPool:
        sku = VM_SKUS[pool.vm_size]
        labels = {"slm.io/pool": pool_name}
        taints: list[str] = []
        gpu_profile = None
        if sku.is_gpu:
            labels |= {"sku": "gpu", "accelerator": "nvidia", "slm.io/gpu-model": str(sku.gpu_model)}
            taints.append(GPU_TAINT)
            gpu_profile = containerservice.GPUProfileArgs(
                driver="None" if args.gpu_operator else "Install")
        return containerservice.AgentPool(
            f"{name}-{pool_name}",
            agent_pool_name=pool_name,
            resource_name_=self.cluster.name,
            resource_group_name=args.resource_group_name,
            mode="User",
            vm_size=pool.vm_size,
            os_type="Linux",
            # Ubuntu for GPU pools: both AKS-managed drivers and the GPU Operator support it.
            os_sku="Ubuntu" if sku.is_gpu else "AzureLinux",
            type="VirtualMachineScaleSets",
            enable_auto_scaling=True,
            count=pool.min_count,
            min_count=pool.min_count,
            max_count=pool.max_count,
            availability_zones=list(pool.zones) or None,
            node_labels=labels,
            node_taints=taints or None,
            gpu_profile=gpu_profile,
            vnet_subnet_id=args.aks_subnet_id,
            enable_node_public_ip=False,
            enable_encryption_at_host=True,
            orchestrator_version=args.kubernetes_version,
            # AKS does not support surge upgrades on Spot pools.
            upgrade_settings=None if pool.spot else containerservice.AgentPoolUpgradeSettingsArgs(max_surge="1"),
            scale_set_priority="Spot" if pool.spot else "Regular",
            scale_set_eviction_policy="Delete" if pool.spot else None,
            spot_max_price=-1 if pool.spot else None,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _gpu_operator(self, name: str, k8s_opts: pulumi.ResourceOptions) -> None:
        ns = k8s.core.v1.Namespace(
            f"{name}-gpu-operator-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="gpu-operator", labels=namespace_labels(
                "privileged", extra={"app.kubernetes.io/part-of": PART_OF})),
            opts=k8s_opts)
        k8s.helm.v3.Release(
            f"{name}-gpu-operator",
            name="gpu-operator",
            chart="gpu-operator",
            version=GPU_OPERATOR_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=GPU_OPERATOR_REPO),
            namespace="gpu-operator",
            values=gpu_operator_values(),
            atomic=True,
            timeout=900,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[ns, *self.pools.values()])),
        )

    def _device_plugin(self, name: str, k8s_opts: pulumi.ResourceOptions) -> None:
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart="nvidia-device-plugin",
            version=DEVICE_PLUGIN_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
            # kube-system: the plugin needs the kubelet's device-plugins hostPath, which a
            # restricted namespace refuses; it is a node agent like AKS's own.
            namespace="kube-system",
            values={
                # AKS labels its GPU nodes accelerator=nvidia; the chart's default affinity expects
                # NFD/GFD labels that AKS-managed drivers do not add.
                "nodeSelector": {"accelerator": "nvidia"},
                "affinity": None,
                "tolerations": [dict(t) for t in GPU_NODE_AGENT_TOLERATIONS],
                "priorityClassName": "system-node-critical",
            },
            atomic=True,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=list(self.pools.values()))),
        )


__all__: Sequence[str] = (
    "InferenceCluster",
    "InferenceClusterArgs",
    "KubeletIdentity",
    "WorkloadIdentity",
    "api_server_access",
    "gpu_operator_values",
)
