"""The shared dependencies of one environment, created once and passed to every component.

Components never create their own dependencies (AVM RMFR4): the resource group, the network, the
Log Analytics workspace, the private DNS zones and the managed identities live here, and the
components receive their ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

import pulumi
from pulumi_azure_native import managedidentity, monitor, network, operationalinsights, privatedns, resources

from components._standard import RoleAssignment, apply_role_assignments

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
    """Inputs of ``Foundation``: names, address ranges and which optional shared parts to create."""

    name_prefix: str
    """Physical names are ``rg-<prefix>-<location>``, ``vnet-<prefix>``, ``log-<prefix>``, ``id-<prefix>-…``."""
    location: str
    subscription_id: pulumi.Input[str]
    vnet_cidr: str
    aks_subnet_cidr: str
    """Subnet ``aks``: the cluster's nodes (pods use the overlay, not this range)."""
    private_endpoint_subnet_cidr: str
    """Subnet ``private-endpoints``."""
    workload_identity_names: Sequence[str] = ()
    """Default: none. One user-assigned identity ``id-<prefix>-<name>`` each (a serving deployment's workload
    identity), in ``workload_identities[<name>]``."""
    private_networking: bool = True
    """Default: private DNS zones linked to the VNet, one per entry of ``PRIVATE_DNS_ZONES``, so private
    endpoints resolve. ``False``: no zones; the ``aks`` subnet gets the ``SERVICE_ENDPOINTS`` instead, so
    pods reach firewalled vaults and storage through virtual-network rules."""
    log_retention_days: int = 30
    """Default: the Log Analytics workspace keeps 30 days."""
    azure_monitor_workspace_enabled: bool = False
    """Default: no Azure Monitor workspace. ``True`` (Azure Managed Prometheus): also the workspace and a
    ``keda`` identity with Monitoring Data Reader on it."""
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
    one Log Analytics workspace (``log_retention_days``); when ``private_networking``, one
    PrivateZone + VirtualNetworkLink per entry of ``PRIVATE_DNS_ZONES``; user-assigned identities
    ``aks-control-plane``, ``aks-kubelet`` and ``wi-<name>`` per ``workload_identity_names``, with
    the two grants AKS needs for a bring-your-own kubelet identity and subnet (Managed Identity
    Operator, Network Contributor). With ``azure_monitor_workspace_enabled`` (Azure Managed
    Prometheus) also the Azure Monitor workspace and a ``keda`` identity that may read it: the
    cluster's KEDA triggers query it before the MonitoringStack, which forwards metrics into it, exists.
    """

    _type_token: ClassVar[str] = "slm:platform:Foundation"  # noqa: S105 (a type token)
    """Our stacks' token; the component package constructs it as ``slm:index:Foundation``."""

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
        super().__init__(self._type_token, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg = resources.ResourceGroup(f"{name}-rg", resource_group_name=f"rg-{args.name_prefix}-{args.location}",
                                     location=args.location, tags=dict(args.tags), opts=child)
        self.resource_group_name = rg.name
        vnet = self._network(name, args)
        workspace = operationalinsights.Workspace(
            f"{name}-log", workspace_name=f"log-{args.name_prefix}", resource_group_name=rg.name,
            location=args.location, sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.log_retention_days, tags=dict(args.tags), opts=child,
        )
        self.log_analytics_workspace_id = workspace.id
        self.private_dns_zone_ids = self._dns_zones(name, args, vnet) if args.private_networking else {}
        self._identities(name, args)
        self.azure_monitor_workspace_id = self.prometheus_query_endpoint = None
        self.keda_identity = None
        if args.azure_monitor_workspace_enabled:
            self._monitor_workspace(name, args)
        self.register_outputs({
            "resource_group_name": self.resource_group_name,
            "log_analytics_workspace_id": self.log_analytics_workspace_id,
        })

    def _network(self, name: str, args: FoundationArgs) -> network.VirtualNetwork:
        """The VNet and its two subnets (``aks``, ``private-endpoints``), in that order."""
        vnet = network.VirtualNetwork(
            f"{name}-vnet", virtual_network_name=f"vnet-{args.name_prefix}",
            resource_group_name=self.resource_group_name, location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.vnet_cidr]),
            tags=dict(args.tags), opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        aks_subnet = network.Subnet(
            f"{name}-snet-aks", subnet_name="aks", resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name, address_prefix=args.aks_subnet_cidr,
            # Without private endpoints (dev) pods reach the vault and the weights storage through their
            # firewalls' virtual-network rules for this subnet, which need these service endpoints.
            service_endpoints=None if args.private_networking else [
                network.ServiceEndpointPropertiesFormatArgs(service=svc) for svc in SERVICE_ENDPOINTS],
            opts=pulumi.ResourceOptions(parent=self),
        )
        pe_subnet = network.Subnet(
            f"{name}-snet-pe", subnet_name="private-endpoints", resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name, address_prefix=args.private_endpoint_subnet_cidr,
            private_endpoint_network_policies="Disabled",
            # Subnets of one VNet are updated one at a time by ARM; serialize to avoid AnotherOperationInProgress.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[aks_subnet]),
        )
        self.aks_subnet_id = aks_subnet.id
        self.virtual_network_name = vnet.name
        self.subnets = [aks_subnet, pe_subnet]
        self.private_endpoint_subnet_id = pe_subnet.id
        return vnet

    def _dns_zones(self, name: str, args: FoundationArgs, vnet: network.VirtualNetwork) -> dict[str, pulumi.Output[str]]:
        """One private zone per ``PRIVATE_DNS_ZONES`` entry, linked to the VNet (no auto-registration)."""
        child = pulumi.ResourceOptions(parent=self)
        ids: dict[str, pulumi.Output[str]] = {}
        for zone in PRIVATE_DNS_ZONES:
            key = zone.removeprefix("privatelink.").split(".")[0]
            pz = privatedns.PrivateZone(f"{name}-dns-{key}", private_zone_name=zone,
                                        resource_group_name=self.resource_group_name, location="global",
                                        tags=dict(args.tags), opts=child)
            privatedns.VirtualNetworkLink(
                f"{name}-dns-{key}-link", private_zone_name=pz.name, resource_group_name=self.resource_group_name,
                virtual_network_link_name=f"link-{args.name_prefix}", location="global",
                virtual_network=privatedns.SubResourceArgs(id=vnet.id), registration_enabled=False,
                tags=dict(args.tags), opts=child,
            )
            ids[zone] = pz.id
        return ids

    def _identity(self, name: str, args: FoundationArgs, key: str, physical: str) -> Identity:
        uai = managedidentity.UserAssignedIdentity(
            f"{name}-id-{key}", resource_name_=physical, resource_group_name=self.resource_group_name,
            location=args.location, tags=dict(args.tags), opts=pulumi.ResourceOptions(parent=self))
        return Identity(name=uai.name, resource_id=uai.id, client_id=uai.client_id, principal_id=uai.principal_id)

    def _identities(self, name: str, args: FoundationArgs) -> None:
        """The AKS control-plane, kubelet and workload identities, and the two grants AKS checks at creation."""
        prefix = args.name_prefix
        self.control_plane_identity = self._identity(name, args, "aks-control-plane", f"id-{prefix}-aks")
        self.kubelet_identity = self._identity(name, args, "aks-kubelet", f"id-{prefix}-kubelet")
        self.workload_identities = {
            dep: self._identity(name, args, f"wi-{dep}", f"id-{prefix}-{dep}")
            for dep in sorted(args.workload_identity_names)
        }
        control_plane = self.control_plane_identity.principal_id
        self.aks_prerequisites = [*apply_role_assignments(
            self, f"{name}-id-aks-kubelet", scope_id=self.kubelet_identity.resource_id,
            subscription_id=args.subscription_id,
            assignments={"control-plane": RoleAssignment(role="Managed Identity Operator",
                                                         principal_id=control_plane)}),
            *apply_role_assignments(
                self, f"{name}-snet-aks", scope_id=self.aks_subnet_id, subscription_id=args.subscription_id,
                assignments={"control-plane": RoleAssignment(role="Network Contributor",
                                                             principal_id=control_plane)})]

    def _monitor_workspace(self, name: str, args: FoundationArgs) -> None:
        """Azure Managed Prometheus: the Azure Monitor workspace and the ``keda`` identity that reads it."""
        amw = monitor.AzureMonitorWorkspace(
            f"{name}-amw", azure_monitor_workspace_name=f"amw-{args.name_prefix}",
            resource_group_name=self.resource_group_name, location=args.location, tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self))
        self.azure_monitor_workspace_id = amw.id
        self.prometheus_query_endpoint = amw.metrics.apply(
            lambda m: m.prometheus_query_endpoint if m is not None and m.prometheus_query_endpoint else "")
        self.keda_identity = self._identity(name, args, "keda", f"id-{args.name_prefix}-keda")
        apply_role_assignments(
            self, f"{name}-amw", scope_id=amw.id, subscription_id=args.subscription_id,
            assignments={"keda-reader": RoleAssignment(role="Monitoring Data Reader",
                                                       principal_id=self.keda_identity.principal_id)})
