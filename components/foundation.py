"""The shared dependencies of one environment, created once and passed to every component.

Components never create their own dependencies (AVM RMFR4): the resource group, the network, the
Log Analytics workspace, the private DNS zones and the managed identities live here, and the
components receive their ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
from pulumi_azure_native import managedidentity, monitor, network, operationalinsights, privatedns, resources

from components._standard import RoleAssignment, apply_role_assignments
from stacks.settings import EnvironmentSettings

PRIVATE_DNS_ZONES: Final = (
    "privatelink.services.ai.azure.com",
    "privatelink.openai.azure.com",
    "privatelink.cognitiveservices.azure.com",
    "privatelink.azurecr.io",
    "privatelink.blob.core.windows.net",
    "privatelink.vaultcore.azure.net",
    "privatelink.grafana.azure.com",
    "privatelink.azure-devices.net",
)
"""Zones for the private endpoints of Foundry (three), ACR, Blob storage, Key Vault, Managed Grafana and
IoT Hub."""


SERVICE_ENDPOINTS: Final = ("Microsoft.KeyVault", "Microsoft.Storage")
"""Service endpoints on the AKS subnet when there are no private endpoints (dev)."""


@dataclass(frozen=True, kw_only=True)
class FoundationArgs:
    """Inputs of ``Foundation``."""

    settings: EnvironmentSettings
    subscription_id: pulumi.Input[str]
    private_networking: bool
    """Create private DNS zones linked to the VNet (staging/prod), so private endpoints resolve."""
    tags: Mapping[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True)
class Identity:
    """A user-assigned managed identity as the components consume it."""

    name: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]


class Foundation(pulumi.ComponentResource):
    """Resource group, VNet and subnets, Log Analytics, private DNS zones, managed identities.

    Creates: one ResourceGroup; one VirtualNetwork with subnets ``aks`` and ``private-endpoints``;
    one Log Analytics workspace (retention from ``settings.monitoring.retention_days``); when
    ``private_networking``, one PrivateZone + VirtualNetworkLink per entry of ``PRIVATE_DNS_ZONES``;
    user-assigned identities ``aks-control-plane``, ``aks-kubelet`` and ``wi-<deployment>`` for
    each AKS deployment (its workload identity), with the two grants AKS needs for a bring-your-own
    kubelet identity and subnet (Managed Identity Operator, Network Contributor). With Azure Managed
    Prometheus (``monitoring.mode: azure-managed``) also the Azure Monitor workspace and a ``keda``
    identity that may read it: the cluster's KEDA triggers query it before the MonitoringStack,
    which forwards metrics into it, exists.
    """

    resource_group_name: pulumi.Output[str]
    virtual_network_name: pulumi.Output[str]
    subnets: list[pulumi.Resource]
    """The VNet's subnets, in creation order (a later subnet must wait for them: one update at a time)."""
    aks_subnet_id: pulumi.Output[str]
    private_endpoint_subnet_id: pulumi.Output[str]
    log_analytics_workspace_id: pulumi.Output[str]
    private_dns_zone_ids: dict[str, pulumi.Output[str]]
    control_plane_identity: Identity
    kubelet_identity: Identity
    workload_identities: dict[str, Identity]
    azure_monitor_workspace_id: pulumi.Output[str] | None
    prometheus_query_endpoint: pulumi.Output[str] | None
    keda_identity: Identity | None
    aks_prerequisites: list[pulumi.Resource]
    """The control plane's grants AKS checks when it creates the cluster (Managed Identity Operator on
    the kubelet identity, Network Contributor on the subnet): pass them as ``InferenceClusterArgs.prerequisites``."""

    def __init__(self, name: str, args: FoundationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm:platform:Foundation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        prefix = s.name_prefix
        tags = dict(args.tags)

        rg = resources.ResourceGroup(f"{name}-rg", resource_group_name=f"rg-{prefix}-{s.location}",
                                     location=s.location, tags=tags, opts=child)
        self.resource_group_name = rg.name
        vnet = network.VirtualNetwork(
            f"{name}-vnet", virtual_network_name=f"vnet-{prefix}", resource_group_name=rg.name,
            location=s.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[s.network.vnet_cidr]),
            tags=tags, opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        aks_subnet = network.Subnet(
            f"{name}-snet-aks", subnet_name="aks", resource_group_name=rg.name,
            virtual_network_name=vnet.name, address_prefix=s.network.aks_subnet_cidr,
            # Without private endpoints (dev) pods reach the vault and the weights storage through their
            # firewalls' virtual-network rules for this subnet, which need these service endpoints.
            service_endpoints=None if args.private_networking else [
                network.ServiceEndpointPropertiesFormatArgs(service=svc) for svc in SERVICE_ENDPOINTS],
            opts=child,
        )
        pe_subnet = network.Subnet(
            f"{name}-snet-pe", subnet_name="private-endpoints", resource_group_name=rg.name,
            virtual_network_name=vnet.name, address_prefix=s.network.private_endpoint_subnet_cidr,
            private_endpoint_network_policies="Disabled",
            # Subnets of one VNet are updated one at a time by ARM; serialize to avoid AnotherOperationInProgress.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[aks_subnet]),
        )
        self.aks_subnet_id = aks_subnet.id
        self.virtual_network_name = vnet.name
        self.subnets = [aks_subnet, pe_subnet]
        self.private_endpoint_subnet_id = pe_subnet.id

        workspace = operationalinsights.Workspace(
            f"{name}-log", workspace_name=f"log-{prefix}", resource_group_name=rg.name,
            location=s.location, sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=s.monitoring.retention_days, tags=tags, opts=child,
        )
        self.log_analytics_workspace_id = workspace.id

        self.private_dns_zone_ids = {}
        if args.private_networking:
            for zone in PRIVATE_DNS_ZONES:
                key = zone.removeprefix("privatelink.").split(".")[0]
                pz = privatedns.PrivateZone(f"{name}-dns-{key}", private_zone_name=zone,
                                         resource_group_name=rg.name, location="global", tags=tags,
                                         opts=child)
                privatedns.VirtualNetworkLink(
                    f"{name}-dns-{key}-link", private_zone_name=pz.name, resource_group_name=rg.name,
                    virtual_network_link_name=f"link-{prefix}", location="global",
                    virtual_network=privatedns.SubResourceArgs(id=vnet.id), registration_enabled=False,
                    tags=tags, opts=child,
                )
                self.private_dns_zone_ids[zone] = pz.id

        def identity(key: str, physical: str) -> Identity:
            uai = managedidentity.UserAssignedIdentity(
                f"{name}-id-{key}", resource_name_=physical, resource_group_name=rg.name,
                location=s.location, tags=tags, opts=child)
            return Identity(name=uai.name, resource_id=uai.id, client_id=uai.client_id,
                            principal_id=uai.principal_id)

        self.control_plane_identity = identity("aks-control-plane", f"id-{prefix}-aks")
        self.kubelet_identity = identity("aks-kubelet", f"id-{prefix}-kubelet")
        self.workload_identities = {
            dep: identity(f"wi-{dep}", f"id-{prefix}-{dep}") for dep in sorted(s.aks_deployments())
        }
        self.aks_prerequisites = [*apply_role_assignments(
            self, f"{name}-id-aks-kubelet", scope_id=self.kubelet_identity.resource_id,
            subscription_id=args.subscription_id,
            assignments={"control-plane": RoleAssignment(role="Managed Identity Operator",
                                                         principal_id=self.control_plane_identity.principal_id)}),
            *apply_role_assignments(
                self, f"{name}-snet-aks", scope_id=aks_subnet.id, subscription_id=args.subscription_id,
                assignments={"control-plane": RoleAssignment(role="Network Contributor",
                                                             principal_id=self.control_plane_identity.principal_id)})]

        self.azure_monitor_workspace_id = self.prometheus_query_endpoint = None
        self.keda_identity = None
        if s.monitoring.mode == "azure-managed":
            amw = monitor.AzureMonitorWorkspace(
                f"{name}-amw", azure_monitor_workspace_name=f"amw-{prefix}", resource_group_name=rg.name,
                location=s.location, tags=tags, opts=child)
            self.azure_monitor_workspace_id = amw.id
            self.prometheus_query_endpoint = amw.metrics.apply(
                lambda m: m.prometheus_query_endpoint if m is not None and m.prometheus_query_endpoint else "")
            self.keda_identity = identity("keda", f"id-{prefix}-keda")
            apply_role_assignments(
                self, f"{name}-amw", scope_id=amw.id, subscription_id=args.subscription_id,
                assignments={"keda-reader": RoleAssignment(role="Monitoring Data Reader",
                                                           principal_id=self.keda_identity.principal_id)})

        self.register_outputs({
            "resource_group_name": self.resource_group_name,
            "log_analytics_workspace_id": self.log_analytics_workspace_id,
        })
