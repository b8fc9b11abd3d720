"""Monthly cost estimate and tagging (catalogue GPU-07).

The estimate is the worst case the stack allows: every pool at ``maxCount`` (autoscaling) or ``count``
all month, Spot pools at ``SPOT_PRICE_FACTOR``, the AKS tier, and provisioned Foundry throughput.
Pay-per-token deployments and storage are usage-billed and not estimated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from policies.rules.catalog import (
    AKS_TIER_USD_PER_HOUR,
    HOURS_PER_MONTH,
    PTU_USD_PER_HOUR,
    SPOT_PRICE_FACTOR,
    VM_SKUS,
    monthly_usd,
)
from policies.rules.wire import Props, get, items, mapping, number, show

REQUIRED_TAGS: Final = ("environment", "owner", "costCenter", "workload")
UNTAGGABLE: Final = frozenset({
    "azure-native:authorization:RoleAssignment", "azure-native:authorization:ManagementLockByScope",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel", "azure-native:insights:DiagnosticSetting",
    "azure-native:monitor:DiagnosticSetting", "azure-native:network:Subnet", "azure-native:network:SecurityRule",
    "azure-native:network:PrivateDnsZoneGroup", "azure-native:privatedns:VirtualNetworkLink",
    "azure-native:storage:BlobContainer", "azure-native:storage:BlobServiceProperties",
    "azure-native:keyvault:Secret", "azure-native:cognitiveservices:Deployment",
    "azure-native:managedidentity:FederatedIdentityCredential", "azure-native:cognitiveservices:RaiPolicy",
    "azure-native:cognitiveservices:ProjectConnection", "azure-native:cognitiveservices:AccountConnection",
    "azure-native:containerregistry:ScopeMap", "azure-native:containerregistry:CacheRule",
    "azure-native:keyvault:Key",
})
"""azure-native types that take no ``tags`` input (child and extension resources)."""


def is_taggable(type_: str, props: Props) -> bool:
    """azure-native resources with tags: not in ``UNTAGGABLE``, and top-level (they take a location)."""
    return type_.startswith("azure-native:") and type_ not in UNTAGGABLE and (
        "location" in props or "tags" in props or type_.endswith(":ResourceGroup"))


def required_tags(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-07: environment, owner, costCenter and workload tags on every taggable Azure resource."""
    if not is_taggable(type_, props):
        return []
    wanted = [str(t) for t in cfg.get("requiredTags", REQUIRED_TAGS)]
    tags = mapping(get(props, "tags"))
    missing = [t for t in wanted if not tags.get(t)]
    if missing:
        return [f"tags: found no {', '.join(missing)}; pass the stack's tags (settings.tags) to this resource."]
    return []


@dataclass(frozen=True)
class CostLine:
    """One priced item of the estimate."""

    resource: str
    what: str
    usd: float


def _pool_line(name: str, pool: Mapping[str, Any]) -> CostLine:
    size = str(pool.get("vmSize") or "")
    autoscaled = pool.get("enableAutoScaling") is True and pool.get("maxCount") is not None
    nodes = int((number(pool.get("maxCount")) if autoscaled else number(pool.get("count"))) or 1)
    spot = pool.get("scaleSetPriority") == "Spot"
    if size not in VM_SKUS:
        return CostLine(name, f"{size or 'unknown size'} x {nodes} (not priced: add it to catalog.VM_SKUS)", 0.0)
    return CostLine(name, f"{size} x {nodes}{' spot' if spot else ''}", monthly_usd(size, nodes, spot=spot))


def estimate(resources: Sequence[tuple[str, str, Props]]) -> list[CostLine]:
    """Cost lines for (type, name, props) triples: AKS tier and pools, VM scale sets (sku.capacity
    instances), provisioned Foundry throughput."""
    lines: list[CostLine] = []
    for type_, name, props in resources:
        if type_ == "azure-native:containerservice:ManagedCluster":
            tier = str(get(props, "sku.tier") or "Free")
            lines.append(CostLine(name, f"AKS {tier} tier", round(AKS_TIER_USD_PER_HOUR.get(tier, 0.0) * HOURS_PER_MONTH, 2)))
            lines.extend(_pool_line(f"{name}/{mapping(p).get('name', i)}", mapping(p))
                         for i, p in enumerate(items(get(props, "agentPoolProfiles"))))
        elif type_ == "azure-native:containerservice:AgentPool":
            lines.append(_pool_line(name, props))
        elif type_ == "azure-native:compute:VirtualMachineScaleSet":
            lines.append(_pool_line(name, {
                "vmSize": get(props, "sku.name"), "count": get(props, "sku.capacity"),
                "scaleSetPriority": get(props, "virtualMachineProfile.priority")}))
        elif type_ == "azure-native:cognitiveservices:Deployment" and \
                str(get(props, "sku.name") or "").endswith("ProvisionedManaged"):
            ptu = number(get(props, "sku.capacity")) or 0
            lines.append(CostLine(name, f"{show(ptu)} PTU", round(ptu * PTU_USD_PER_HOUR * HOURS_PER_MONTH, 2)))
    return lines


def budget_violation(lines: Sequence[CostLine], budget_usd: float) -> str | None:
    """The message when the estimate exceeds ``budget_usd``, naming the biggest items; else None."""
    total = round(sum(line.usd for line in lines), 2)
    if total <= budget_usd:
        return None
    top = sorted(lines, key=lambda line: -line.usd)[:4]
    parts = "; ".join(f"{line.resource} ({line.what}) ${line.usd:,.0f}" for line in top)
    return (f"estimated monthly cost: found ${total:,.0f} (worst case, every pool at maxCount) against a budget of "
            f"${budget_usd:,.0f}: {parts}. Lower maxCount, use Spot or smaller GPU sizes, or raise "
            f"budget_usd_per_month after a cost review. Spot is priced at {SPOT_PRICE_FACTOR:.0%} of list.")
