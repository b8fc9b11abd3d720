"""AVM-style standard interfaces: the same names and shapes in every component, one implementation.

Every component accepts ``tags``, ``lock``, ``role_assignments`` and ``diagnostic_settings`` with
these types and creates the children through the functions below, so a role assignment or a lock
looks the same wherever it appears (Azure Verified Modules, STYLE P5). Components never create
their dependencies (a Log Analytics workspace, a subnet): they receive their ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import pulumi
from pulumi_azure_native import authorization, monitor, network

ROLE_DEFINITION_IDS: Final[Mapping[str, str]] = {
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Certificate User": "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
    "Cognitive Services User": "a97b65f3-24c7-4388-baec-2e87135dc908",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Grafana Admin": "22926164-76b3-42b3-bc55-97df8dab3e41",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "IoT Hub Data Contributor": "4fc6c259-987e-4a07-842e-c321cc9d413f",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "Grafana Viewer": "60921a7e-fef1-4a43-9b16-a26c52ad4769",
}
"""Built-in Azure role definition ids (the same in every tenant)."""

LockKind = Literal["CanNotDelete", "ReadOnly"]

DEPLOYER_DESCRIPTION: Final = "deployer: "
"""Prefix of the description of every grant to the identity running ``pulumi up``."""


@dataclass(frozen=True, kw_only=True)
class RoleAssignment:
    """Grant ``role`` on the component's primary resource to ``principal_id``."""

    role: str
    """A built-in role name from ``ROLE_DEFINITION_IDS``."""
    principal_id: pulumi.Input[str]
    principal_type: Literal["ServicePrincipal", "Group", "User"] = "ServicePrincipal"
    """Default: ServicePrincipal (managed identities are service principals). It must match the
    principal: Azure refuses an assignment whose type differs (UnmatchedPrincipalType)."""
    description: str | None = None
    """Default: none. Shown next to the assignment in Azure. Grants to whoever runs ``pulumi up`` start
    with ``deployer:`` (``DEPLOYER_DESCRIPTION``): its object id is only known at deploy time, and the
    policy pack recognizes the deployer's grants by it (``slm-identity-deployer-grants``)."""

    def __post_init__(self) -> None:
        if self.role not in ROLE_DEFINITION_IDS:
            msg = (f"role {self.role!r} is not a known built-in role; use one of: "
                   f"{', '.join(sorted(ROLE_DEFINITION_IDS))}")
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class DiagnosticSetting:
    """Send the resource's logs (and metrics) to a Log Analytics workspace."""

    workspace_resource_id: pulumi.Input[str]
    log_categories: tuple[str, ...] = ()
    """Default: the ``allLogs`` category group."""
    metrics_enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class Lock:
    """A management lock on the component's stateful resources."""

    kind: LockKind = "CanNotDelete"


@dataclass(frozen=True, kw_only=True)
class PrivateEndpointConfig:
    """Where a private endpoint goes and which private DNS zones resolve it."""

    subnet_id: pulumi.Input[str]
    private_dns_zone_ids: Sequence[pulumi.Input[str]] = ()


@dataclass(frozen=True, kw_only=True)
class StandardInterfaces:
    """Mixin: the cross-cutting inputs every component accepts, with the same names."""

    tags: Mapping[str, str] = field(default_factory=dict[str, str])
    lock: Lock | None = None
    """Default: no lock. Prod stacks pass ``Lock()`` so stateful resources survive a stray destroy."""
    role_assignments: Mapping[str, RoleAssignment] = field(default_factory=dict[str, RoleAssignment])
    """Keyed by a stable, caller-chosen name; the key becomes part of the child's name."""
    diagnostic_settings: Mapping[str, DiagnosticSetting] = field(
        default_factory=dict[str, DiagnosticSetting]
    )


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The full ARM id of a built-in role in ``subscription_id``."""
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/", ROLE_DEFINITION_IDS[role],
    )


def apply_role_assignments(
    owner: pulumi.Resource,
    name: str,
    *,
    scope_id: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    assignments: Mapping[str, RoleAssignment],
) -> list[authorization.RoleAssignment]:
    """Create one role assignment per entry, named ``{name}-ra-{key}``, scoped to ``scope_id``."""
    created: list[authorization.RoleAssignment] = []
    for key, ra in sorted(assignments.items()):
        created.append(authorization.RoleAssignment(
            f"{name}-ra-{key}",
            scope=scope_id,
            principal_id=ra.principal_id,
            principal_type=ra.principal_type,
            role_definition_id=role_definition_id(subscription_id, ra.role),
            description=ra.description,
            opts=pulumi.ResourceOptions(parent=owner),
        ))
    return created


def apply_diagnostic_settings(
    owner: pulumi.Resource,
    name: str,
    *,
    resource_id: pulumi.Input[str],
    settings: Mapping[str, DiagnosticSetting],
) -> list[monitor.DiagnosticSetting]:
    """Create one diagnostic setting per entry, named ``{name}-diag-{key}``."""
    created: list[monitor.DiagnosticSetting] = []
    for key, ds in sorted(settings.items()):
        logs = (
            [monitor.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in ds.log_categories]
            if ds.log_categories
            else [monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)]
        )
        created.append(monitor.DiagnosticSetting(
            f"{name}-diag-{key}",
            name=f"{name}-{key}",
            resource_uri=resource_id,
            workspace_id=ds.workspace_resource_id,
            logs=logs,
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)]
            if ds.metrics_enabled else None,
            opts=pulumi.ResourceOptions(parent=owner),
        ))
    return created


def apply_lock(
    owner: pulumi.Resource, name: str, *, scope_id: pulumi.Input[str], lock: Lock | None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> authorization.ManagementLockByScope | None:
    """Lock ``scope_id``; created last so a ReadOnly lock cannot block its siblings.

    On destroy the lock is removed before the resource (it is a child that depends on it); expect
    destroy to need the lock removed deliberately first in prod, which is the point.
    """
    if lock is None:
        return None
    return authorization.ManagementLockByScope(
        f"{name}-lock",
        scope=scope_id,
        level=lock.kind,
        notes="Managed by slm-platform: holds model weights, images or secrets.",
        opts=pulumi.ResourceOptions(parent=owner, depends_on=list(depends_on)),
    )


def apply_private_endpoint(
    owner: pulumi.Resource,
    name: str,
    *,
    resource_id: pulumi.Input[str],
    group_id: str,
    config: PrivateEndpointConfig,
    resource_group_name: pulumi.Input[str],
    location: pulumi.Input[str],
    tags: Mapping[str, str],
) -> network.PrivateEndpoint:
    """Create a private endpoint ``{name}-pe`` for ``group_id`` of ``resource_id``.

    When ``config.private_dns_zone_ids`` is non-empty, also a DNS zone group ``{name}-pe-dns`` so the
    endpoint's A records are registered in those zones (one zone config per zone, named after it).
    """
    endpoint = network.PrivateEndpoint(
        f"{name}-pe",
        resource_group_name=resource_group_name,
        location=location,
        subnet=network.SubnetArgs(id=config.subnet_id),
        custom_network_interface_name=f"{name}-pe-nic",
        private_link_service_connections=[network.PrivateLinkServiceConnectionArgs(
            name=f"{name}-{group_id}",
            private_link_service_id=resource_id,
            group_ids=[group_id],
        )],
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=owner),
    )
    if config.private_dns_zone_ids:
        network.PrivateDnsZoneGroup(
            f"{name}-pe-dns",
            resource_group_name=resource_group_name,
            private_endpoint_name=endpoint.name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(
                    # The zone's own name ("privatelink.azurecr.io"), dots made hyphens: stable and unique.
                    name=pulumi.Output.from_input(zone_id).apply(
                        lambda zid: zid.rstrip("/").rsplit("/", 1)[-1].replace(".", "-")),
                    private_dns_zone_id=zone_id,
                )
                for zone_id in config.private_dns_zone_ids
            ],
            opts=pulumi.ResourceOptions(parent=owner),
        )
    return endpoint
