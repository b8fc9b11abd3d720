"""Monthly cost estimate and tagging (catalogue GPU-07).

The estimate is an upper bound of what the stack allows, all month: every AKS pool at ``maxCount``
(autoscaling) or ``count``, VM scale sets at ``sku.capacity``, VMs, ACI container groups at their requested
vCPU, memory and GPUs, Foundry provisioned throughput at its PTUs, the AKS tier; Spot at ``SPOT_PRICE_FACTOR``.
Prices are the committed list prices of ``catalog.py`` (source and date there). Token-priced Foundry
deployments have no fixed cost ($0, said on their line); storage and egress are usage-billed and not
estimated. Compute the table cannot price is a line with ``unpriced`` set, which the budget policy reports
("cannot price"), never a silent $0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from policies.rules.catalog import (
    ACI_GPU_USD_PER_HOUR,
    ACI_USD_PER_GB_HOUR,
    ACI_USD_PER_VCPU_HOUR,
    AKS_TIER_USD_PER_HOUR,
    HOURS_PER_MONTH,
    PTU_USD_PER_HOUR,
    SPOT_PRICE_FACTOR,
    TOKEN_PRICED_SKUS,
    VM_SKUS,
    monthly_usd,
)
from policies.rules.tokens import (
    AGENT_POOL,
    CLUSTER,
    CONTAINER_GROUP,
    FOUNDRY_DEPLOYMENT,
    VM,
    VMSS,
    normalize_type,
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


UNPRICED_COMPUTE: Final[dict[str, str]] = {
    "azure-native:app:ContainerApp": "Container Apps bill per vCPU- and GiB-second of replicas",
    "azure-native:app:Job": "Container Apps jobs bill per vCPU- and GiB-second of executions",
    "azure-native:machinelearningservices:OnlineDeployment": "managed online endpoints bill their instances",
    "azure-native:machinelearningservices:BatchDeployment": "batch endpoints bill their compute cluster",
    "azure-native:machinelearningservices:Compute": "Azure ML compute bills its VM nodes",
    "azure-native:batch:Pool": "Batch pools bill their VM nodes",
    "azure-native:web:AppServicePlan": "App Service plans bill their instances",
}
"""Compute types that cost money and that the estimate does not price: each is a "cannot price" finding."""


PRICED_TYPES: Final = frozenset({CLUSTER, AGENT_POOL, VMSS, VM, CONTAINER_GROUP, FOUNDRY_DEPLOYMENT,
                                  *UNPRICED_COMPUTE})
"""The (normalized) types ``estimate`` reads; every other resource adds no line."""


@dataclass(frozen=True)
class CostLine:
    """One item of the estimate: priced (``usd``), or not (``unpriced`` says why; ``usd`` is 0)."""

    resource: str
    what: str
    usd: float
    unpriced: str | None = None
    item: str = ""
    """What a reader calls it (``system pool``, ``pool gpua10``, ``AKS Standard tier``): ``slmctl plan``'s breakdown."""


def node_count(pool: Mapping[str, Any]) -> int:
    """The most nodes a pool runs: ``maxCount`` when it autoscales, else ``count`` (AKS's default 1)."""
    autoscaled = pool.get("enableAutoScaling") is True and pool.get("maxCount") is not None
    return int((number(pool.get("maxCount")) if autoscaled else number(pool.get("count"))) or 1)


def is_spot(priority: Any) -> bool:
    """Spot capacity (VMSS still accepts the older name ``Low``)."""
    return priority in {"Spot", "Low"}


def _vm_line(name: str, size: str, nodes: int, *, spot: bool) -> CostLine:
    if size not in VM_SKUS:
        what = f"{size or 'unknown size'} x {nodes}"
        return CostLine(name, what, 0.0, f"vmSize {size or 'unset'!r} has no price in catalog.VM_SKUS")
    return CostLine(name, f"{size} x {nodes}{' spot' if spot else ''}", monthly_usd(size, nodes, spot=spot))


def _pool_line(name: str, pool: Mapping[str, Any], pool_name: Any) -> CostLine:
    line = _vm_line(name, str(pool.get("vmSize") or ""), node_count(pool), spot=is_spot(pool.get("scaleSetPriority")))
    item = "system pool" if pool.get("mode") == "System" else f"pool {pool_name}"
    return replace(line, item=item)


def _container_group_line(name: str, props: Props) -> CostLine:
    """ACI: the group's requested vCPU, memory and GPUs, all month (ACI bills the requests, per second)."""
    os_type, sku = str(get(props, "osType") or "Linux"), str(get(props, "sku") or "Standard")
    cpu = memory = 0.0
    gpus: dict[str, float] = {}
    for i, container in enumerate(items(get(props, "containers"))):
        requests = mapping(get(container, "resources.requests"))
        c, m = number(requests.get("cpu")), number(requests.get("memoryInGB"))
        if c is None or m is None:
            return CostLine(name, "container group", 0.0, f"containers[{i}].resources.requests has no cpu and "
                                                          "memoryInGB")
        cpu, memory = cpu + c, memory + m
        gpu = mapping(requests.get("gpu"))
        if gpu:
            gpus[str(gpu.get("sku"))] = gpus.get(str(gpu.get("sku")), 0.0) + (number(gpu.get("count")) or 0.0)
    what = f"ACI {show(cpu)} vCPU, {show(memory)} GB" + "".join(f", {show(n)} {k} GPU" for k, n in gpus.items())
    if os_type != "Linux" or sku != "Standard":
        return CostLine(name, what, 0.0, f"osType {os_type!r} / sku {sku!r} (only Linux Standard groups are priced)")
    unknown = sorted(k for k in gpus if k not in ACI_GPU_USD_PER_HOUR)
    if unknown:
        return CostLine(name, what, 0.0, f"GPU sku {unknown[0]!r} has no price in catalog.ACI_GPU_USD_PER_HOUR")
    hourly = cpu * ACI_USD_PER_VCPU_HOUR + memory * ACI_USD_PER_GB_HOUR + sum(
        n * ACI_GPU_USD_PER_HOUR[k] for k, n in gpus.items())
    spot = is_spot(get(props, "priority"))
    factor = SPOT_PRICE_FACTOR if spot else 1.0
    return CostLine(name, what + (" spot" if spot else ""), round(hourly * factor * HOURS_PER_MONTH, 2))


def _foundry_line(name: str, props: Props) -> CostLine:
    """Provisioned throughput: PTUs x the deployment type's hourly rate; token-priced types: $0 fixed."""
    sku = str(get(props, "sku.name") or "")
    capacity = number(get(props, "sku.capacity")) or 0.0
    if sku in TOKEN_PRICED_SKUS:
        return CostLine(name, f"{sku} x {show(capacity)} (token-priced: $0 fixed, billed per token)", 0.0)
    if sku in PTU_USD_PER_HOUR:
        return CostLine(name, f"{sku} {show(capacity)} PTU",
                        round(capacity * PTU_USD_PER_HOUR[sku] * HOURS_PER_MONTH, 2))
    return CostLine(name, f"{sku or 'unset'} x {show(capacity)}", 0.0,
                    f"deployment type {sku or 'unset'!r} has no price in catalog.PTU_USD_PER_HOUR or "
                    "catalog.TOKEN_PRICED_SKUS")


def estimate(resources: Sequence[tuple[str, str, Props]]) -> list[CostLine]:
    """Cost lines for (type, name, props) triples, an upper bound for a month: the AKS tier, every AKS pool at
    ``maxCount`` (or ``count``), VM scale sets at ``sku.capacity``, VMs, ACI container groups at their requests,
    Foundry provisioned throughput at its PTUs (token-priced deployments $0). Compute it cannot price is a line
    with ``unpriced`` set, never a silent $0. Versioned type tokens are priced as their default token.

    The one estimate: the budget policies apply it to the stack the engine sends, ``slmctl plan`` to the
    registrations it recorded, so both print the same total (``monthly_total``)."""
    lines: list[CostLine] = []
    for raw_type, name, props in resources:
        type_ = normalize_type(raw_type)
        if type_ not in PRICED_TYPES:
            continue
        if type_ == CLUSTER:
            tier = str(get(props, "sku.tier") or "Free")
            if tier in AKS_TIER_USD_PER_HOUR:
                lines.append(CostLine(name, f"AKS {tier} tier", round(AKS_TIER_USD_PER_HOUR[tier] * HOURS_PER_MONTH, 2),
                                      item=f"AKS {tier} tier"))
            else:
                lines.append(CostLine(name, f"AKS {tier} tier", 0.0, f"sku.tier {tier!r} has no price in "
                                                                     "catalog.AKS_TIER_USD_PER_HOUR", f"AKS {tier} tier"))
            for i, p in enumerate(items(get(props, "agentPoolProfiles"))):
                pool_name = mapping(p).get("name", i)
                lines.append(_pool_line(f"{name}/{pool_name}", mapping(p), pool_name))
        elif type_ == AGENT_POOL:
            lines.append(_pool_line(name, props, get(props, "agentPoolName") or name))
        elif type_ == VMSS:
            lines.append(replace(_vm_line(name, str(get(props, "sku.name") or ""),
                                          int(number(get(props, "sku.capacity")) or 1),
                                          spot=is_spot(get(props, "virtualMachineProfile.priority"))),
                                 item=f"scale set {name}"))
        elif type_ == VM:
            lines.append(replace(_vm_line(name, str(get(props, "hardwareProfile.vmSize") or ""), 1,
                                          spot=is_spot(get(props, "priority"))), item=f"VM {name}"))
        elif type_ == CONTAINER_GROUP:
            lines.append(replace(_container_group_line(name, props), item=f"ACI group {name}"))
        elif type_ == FOUNDRY_DEPLOYMENT:
            lines.append(replace(_foundry_line(name, props), item=f"Foundry deployment {name}"))
        elif type_ in UNPRICED_COMPUTE:
            lines.append(CostLine(name, type_.rsplit(":", 1)[-1], 0.0, UNPRICED_COMPUTE[type_], name))
    return lines


def unpriced_message(line: CostLine) -> str:
    """The "cannot price" finding for a line the estimate could not price."""
    return (f"cost: cannot price {line.resource} ({line.what}): {line.unpriced}, so the monthly budget cannot be "
            "checked for it. Use a priced size or type, or add its list price to policies/rules/catalog.py with "
            "its source and date.")


def _biggest(lines: Sequence[CostLine]) -> str:
    top = sorted((line for line in lines if line.usd > 0), key=lambda line: -line.usd)[:4]
    return "; ".join(f"{line.resource} ({line.what}) ${line.usd:,.0f}" for line in top) or "no priced item"


BOUND: Final = "upper bound: every pool and scale set at its maximum count, provisioned throughput at its PTUs"


def monthly_total(lines: Sequence[CostLine]) -> float:
    """The estimate's total in USD, to the cent (what the budget policies compare and ``slmctl plan`` prints)."""
    return round(sum(line.usd for line in lines), 2)


def budget_violation(lines: Sequence[CostLine], budget_usd: float) -> str | None:
    """The message when the estimate exceeds ``budget_usd``, naming the biggest items; else None."""
    total = monthly_total(lines)
    if total <= budget_usd:
        return None
    return (f"estimated monthly cost: found ${total:,.0f} ({BOUND}) against a budget of ${budget_usd:,.0f}: "
            f"{_biggest(lines)}. Lower maxCount or PTUs, use Spot or smaller GPU sizes, or raise "
            f"budget_usd_per_month after a cost review. Spot is priced at {SPOT_PRICE_FACTOR:.0%} of list.")


def budget_warning(lines: Sequence[CostLine], budget_usd: float, warn_percent: float) -> str | None:
    """The message when the estimate reaches ``warn_percent`` % of ``budget_usd`` (over it included); else None."""
    total = monthly_total(lines)
    if budget_usd <= 0 or total < budget_usd * warn_percent / 100:
        return None
    return (f"estimated monthly cost: found ${total:,.0f}, {total / budget_usd:.0%} of the budget of "
            f"${budget_usd:,.0f} (this warning starts at {show(warn_percent)}%; {BOUND}): {_biggest(lines)}. "
            "Plan the next increase with a cost review before the budget policy blocks it.")
