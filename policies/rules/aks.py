"""AKS rules (catalogue group B: AKS-01..AKS-11) and GPU node-pool guardrails (GPU-01..GPU-03)."""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from policies.rules.catalog import VM_SKUS
from policies.rules.cidr import admits_internet, describe
from policies.rules.cost import is_spot, node_count
from policies.rules.tokens import AGENT_POOL, CLUSTER, VMSS
from policies.rules.wire import Props, Unknown, applies_to, get, items, mapping, number, show, truthy

NETWORK_POLICIES: Final = frozenset({"azure", "calico", "cilium"})
SYSTEM_TAINT: Final = "CriticalAddonsOnly=true:NoSchedule"
DEFAULT_GPU_TAINT: Final = "sku=gpu:NoSchedule"
POOL_TYPES: Final = frozenset({AGENT_POOL, CLUSTER})
"""The types ``pools`` reads node pools from: an AgentPool, or a cluster's inline ``agentPoolProfiles``."""


def is_gpu_size(vm_size: Any) -> bool:
    """N-series sizes (``Standard_N*``) or any size the SKU table knows to carry a GPU."""
    name = str(vm_size or "")
    sku = VM_SKUS.get(name)
    return (sku is not None and sku.is_gpu) or name.startswith("Standard_N")


def pools(type_: str, props: Props) -> list[tuple[str, dict[str, Any]]]:
    """(path prefix, pool properties) of an AgentPool or of a cluster's inline ``agentPoolProfiles``."""
    if type_ == AGENT_POOL:
        return [("", mapping(props))]
    if type_ == CLUSTER:
        return [(f"agentPoolProfiles[{i}].", mapping(p)) for i, p in enumerate(items(get(props, "agentPoolProfiles")))]
    return []


@applies_to(CLUSTER)
def entra_rbac(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-01: managed Entra ID with admin groups and Kubernetes RBAC."""
    out = []
    if get(props, "aadProfile.managed") is not True:
        out.append(f"aadProfile.managed: found {show(get(props, 'aadProfile.managed'))}; enable managed Entra ID.")
    if not items(get(props, "aadProfile.adminGroupObjectIDs")):
        out.append("aadProfile.adminGroupObjectIDs: found empty; name the Entra group that administers the cluster.")
    if get(props, "enableRBAC") is False:
        out.append("enableRBAC: found false; Kubernetes RBAC must stay on.")
    return out


@applies_to(CLUSTER)
def azure_rbac(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-01: Azure RBAC for Kubernetes authorization."""
    if get(props, "aadProfile.enableAzureRBAC") is not True:
        return [f"aadProfile.enableAzureRBAC: found {show(get(props, 'aadProfile.enableAzureRBAC'))}; set it to "
                "true so cluster access is granted with Azure role assignments."]
    return []


@applies_to(CLUSTER)
def local_accounts(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-02: no local (certificate) admin accounts."""
    if get(props, "disableLocalAccounts") is not True:
        return [f"disableLocalAccounts: found {show(get(props, 'disableLocalAccounts'))}; set it to true "
                "(requires managed Entra ID) so nobody holds a non-expiring admin kubeconfig."]
    return []


@applies_to(CLUSTER)
def api_server_access(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-03: private API server, or authorized IP ranges without 0.0.0.0/0."""
    if get(props, "apiServerAccessProfile.enablePrivateCluster") is True:
        return []
    if cfg.get("requirePrivateCluster", False):
        return [f"apiServerAccessProfile.enablePrivateCluster: found "
                f"{show(get(props, 'apiServerAccessProfile.enablePrivateCluster'))}; this environment requires a "
                "private API server."]
    ranges = [str(r) for r in items(get(props, "apiServerAccessProfile.authorizedIPRanges"))]
    if not ranges or admits_internet(ranges):  # by arithmetic: 0.0.0.0/1 + 128.0.0.0/1 is the internet
        found = f"{show(ranges)} (admitting {describe(ranges)})" if ranges else "no authorizedIPRanges"
        return [f"apiServerAccessProfile.authorizedIPRanges: found {found} on a public API server; enable the "
                "private cluster or list only your CI and office CIDRs."]
    return []


@applies_to(POOL_TYPES)
def node_public_ip(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-03: no public IPs on nodes."""
    return [f"{p}enableNodePublicIP: found true; nodes must not have public IPs (egress goes through the "
            "load balancer or NAT gateway)." for p, pool in pools(type_, props) if pool.get("enableNodePublicIP") is True]


@applies_to(CLUSTER)
def legacy_addons(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-03: the Kubernetes dashboard and HTTP application routing add-ons stay off."""
    return [f"addonProfiles.{name}.enabled: found true; disable it ({why})."
            for name, why in (("kubeDashboard", "it exposes cluster-wide access"),
                              ("httpApplicationRouting", "it publishes services on a public DNS zone"))
            if get(props, f"addonProfiles.{name}.enabled") is True]


@applies_to(CLUSTER)
def network_policy(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-04: a network policy engine, required even when ``networkProfile`` is absent."""
    engine = get(props, "networkProfile.networkPolicy")
    if engine in NETWORK_POLICIES:
        return []
    return [f"networkProfile.networkPolicy: found {show(engine)}; set 'cilium' (or 'azure'/'calico') so "
            "NetworkPolicies are enforced."]


@applies_to(CLUSTER)
def workload_identity(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-05: managed identity, OIDC issuer and workload identity; no service principal secret."""
    out = []
    if get(props, "identity.type") not in ("SystemAssigned", "UserAssigned"):
        out.append(f"identity.type: found {show(get(props, 'identity.type'))}; use a managed identity.")
    if get(props, "servicePrincipalProfile.secret") is not None:
        out.append("servicePrincipalProfile.secret: found a client secret; remove the service principal and "
                   "use the managed identity.")
    if get(props, "oidcIssuerProfile.enabled") is not True:
        out.append(f"oidcIssuerProfile.enabled: found {show(get(props, 'oidcIssuerProfile.enabled'))}; set it to true.")
    if get(props, "securityProfile.workloadIdentity.enabled") is not True:
        out.append(f"securityProfile.workloadIdentity.enabled: found "
                   f"{show(get(props, 'securityProfile.workloadIdentity.enabled'))}; set it to true so pods use "
                   "federated credentials instead of secrets.")
    return out


@applies_to(CLUSTER)
def azure_policy_addon(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-06: the Azure Policy add-on (admission-time guardrails)."""
    if get(props, "addonProfiles.azurepolicy.enabled") is not True:
        return [f"addonProfiles.azurepolicy.enabled: found {show(get(props, 'addonProfiles.azurepolicy.enabled'))}; "
                "enable the Azure Policy add-on."]
    return []


@applies_to(CLUSTER)
def defender(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-07: Defender for Containers sensor with a Log Analytics workspace."""
    if get(props, "securityProfile.defender.securityMonitoring.enabled") is not True:
        return [f"securityProfile.defender.securityMonitoring.enabled: found "
                f"{show(get(props, 'securityProfile.defender.securityMonitoring.enabled'))}; enable Defender."]
    workspace = get(props, "securityProfile.defender.logAnalyticsWorkspaceResourceId")
    if not workspace and not isinstance(workspace, Unknown):  # unknown (a first preview) is "cannot verify"
        return ["securityProfile.defender.logAnalyticsWorkspaceResourceId: found unset; point it at the workspace."]
    return []


@applies_to(CLUSTER)
def secrets_store_csi(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-08: Key Vault secrets provider with rotation."""
    base = "addonProfiles.azureKeyvaultSecretsProvider"
    if get(props, f"{base}.enabled") is not True:
        return [f"{base}.enabled: found {show(get(props, f'{base}.enabled'))}; enable the Key Vault CSI driver so "
                "model tokens and API keys are mounted from Key Vault."]
    if not truthy(get(props, f"{base}.config.enableSecretRotation")):
        return [f"{base}.config.enableSecretRotation: found {show(get(props, f'{base}.config.enableSecretRotation'))};"
                " set it to 'true'."]
    return []


@applies_to(POOL_TYPES)
def encryption_at_host(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-09: host encryption on every pool; KMS and a disk encryption set when ``requireCmk``."""
    out = [f"{p}enableEncryptionAtHost: found {show(pool.get('enableEncryptionAtHost'))}; set it to true so temp "
           "disks and caches (model weights) are encrypted." for p, pool in pools(type_, props)
           if pool.get("enableEncryptionAtHost") is not True]
    if type_ == CLUSTER and cfg.get("requireCmk", False):
        if get(props, "securityProfile.azureKeyVaultKms.enabled") is not True:
            out.append("securityProfile.azureKeyVaultKms.enabled: found unset; enable KMS etcd encryption.")
        if not get(props, "diskEncryptionSetID"):
            out.append("diskEncryptionSetID: found unset; encrypt OS disks with a customer-managed key.")
    return out


@applies_to(CLUSTER)
def auto_upgrade(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-10: cluster and node-OS auto-upgrade channels."""
    out = []
    channel = get(props, "autoUpgradeProfile.upgradeChannel")
    if channel in (None, "none"):
        out.append(f"autoUpgradeProfile.upgradeChannel: found {show(channel)}; use 'patch' or 'stable'.")
    node = get(props, "autoUpgradeProfile.nodeOSUpgradeChannel")
    if node in (None, "None", "Unmanaged"):
        out.append(f"autoUpgradeProfile.nodeOSUpgradeChannel: found {show(node)}; use 'NodeImage' or 'SecurityPatch'.")
    return out


@applies_to(POOL_TYPES)
def production_sla(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AKS-11: paid tier with uptime SLA; a tainted, zonal System pool."""
    out = []
    if type_ == CLUSTER and get(props, "sku.tier") not in ("Standard", "Premium"):
        out.append(f"sku.tier: found {show(get(props, 'sku.tier'))}; use 'Standard' for the uptime SLA.")
    for p, pool in pools(type_, props):
        if pool.get("mode") != "System":
            continue
        if SYSTEM_TAINT not in [str(t) for t in items(pool.get("nodeTaints"))]:
            out.append(f"{p}nodeTaints: found {show(pool.get('nodeTaints'))}; taint the System pool "
                       f"'{SYSTEM_TAINT}' so workloads stay off it.")
        if len(items(pool.get("availabilityZones"))) < 2:
            out.append(f"{p}availabilityZones: found {show(pool.get('availabilityZones'))}; spread the System "
                       "pool over at least two zones.")
    return out


# --------------------------------------------------------------------------- GPU pools (group E)


@applies_to(POOL_TYPES)
def gpu_vm_sizes(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-01: GPU sizes and MIG profiles from the environment's allow-list."""
    allowed = [str(s) for s in cfg.get("allowedGpuVmSizes", sorted(n for n, s in VM_SKUS.items() if s.is_gpu))]
    allowed_mig = [str(s) for s in cfg.get("allowedGpuInstanceProfiles", [])]
    out = []
    for p, pool in pools(type_, props):
        size = pool.get("vmSize")
        if not is_gpu_size(size):
            continue
        if size not in allowed:
            out.append(f"{p}vmSize: found {show(size)}; GPU pools here may use {', '.join(allowed) or 'no GPU size'}.")
        mig = pool.get("gpuInstanceProfile")
        if mig is not None and mig not in allowed_mig:
            out.append(f"{p}gpuInstanceProfile: found {show(mig)}; allowed MIG profiles: "
                       f"{', '.join(allowed_mig) or 'none'}.")
        driver = get(pool, "gpuProfile.driver")
        if cfg.get("gpuOperator", False) and driver != "None":
            out.append(f"{p}gpuProfile.driver: found {show(driver)}; with the NVIDIA GPU Operator set it to "
                       "'None' so drivers are not installed twice.")
    return out


@applies_to(POOL_TYPES)
def gpu_pool_autoscaling(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-02: GPU pools autoscale; scale to zero where ``requireScaleToZero`` (dev). The cap is ``gpu_node_cap``."""
    out = []
    for p, pool in pools(type_, props):
        if not is_gpu_size(pool.get("vmSize")):
            continue
        if pool.get("enableAutoScaling") is not True:
            out.append(f"{p}enableAutoScaling: found {show(pool.get('enableAutoScaling'))}; GPU pools must "
                       "autoscale (set minCount/maxCount).")
        if cfg.get("requireScaleToZero", False) and (number(pool.get("minCount")) or 0) != 0:
            out.append(f"{p}minCount: found {show(pool.get('minCount'))}; use 0 so idle GPU nodes are released.")
    return out


def gpu_node_groups(type_: str, props: Props) -> list[tuple[str, int, str, Any]]:
    """Every group of GPU VMs: (path of its node count, most nodes, path of its priority, priority).

    AKS pools (an AgentPool or a cluster's inline profiles) count ``maxCount`` when they autoscale, else
    ``count``; a VM scale set of a GPU size counts ``sku.capacity`` (a GPU pool in all but name).
    """
    if type_ == VMSS:
        if not is_gpu_size(get(props, "sku.name")):
            return []
        return [("sku.capacity", int(number(get(props, "sku.capacity")) or 1), "virtualMachineProfile.priority",
                 get(props, "virtualMachineProfile.priority"))]
    out = []
    for p, pool in pools(type_, props):
        if is_gpu_size(pool.get("vmSize")):
            autoscaled = pool.get("enableAutoScaling") is True and pool.get("maxCount") is not None
            out.append((f"{p}{'maxCount' if autoscaled else 'count'}", node_count(pool), f"{p}scaleSetPriority",
                        pool.get("scaleSetPriority")))
    return out


@applies_to(POOL_TYPES, VMSS)
def gpu_node_cap(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-02: no group of GPU VMs may grow past ``maxGpuNodes`` (the cap, mandatory in every tier)."""
    cap = number(cfg.get("maxGpuNodes", 4)) or 0
    return [f"{path}: found {nodes}; at most {show(cap)} GPU nodes per pool here (raise maxGpuNodes in the policy "
            "config after a cost review)." for path, nodes, _, _ in gpu_node_groups(type_, props) if nodes > cap]


@applies_to(POOL_TYPES, VMSS)
def gpu_pool_priority(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-02: Spot (evict Delete, price cap) where ``priority`` is Spot; Regular where it is Regular (prod)."""
    want = str(cfg.get("priority", "any"))
    out = []
    if want == "Regular":  # serving capacity that Azure can evict: AKS pools and GPU scale sets alike
        return [f"{path}: found {show(prio)}; serving pools here use Regular capacity."
                for _, _, path, prio in gpu_node_groups(type_, props) if is_spot(prio)]
    for p, pool in pools(type_, props):
        if not is_gpu_size(pool.get("vmSize")) or want != "Spot":
            continue
        prio = pool.get("scaleSetPriority") or "Regular"
        if prio != "Spot":
            out.append(f"{p}scaleSetPriority: found {show(prio)}; use 'Spot' for non-production GPU pools.")
        elif pool.get("scaleSetEvictionPolicy") != "Delete" or pool.get("spotMaxPrice") is None:
            out.append(f"{p}scaleSetEvictionPolicy: found {show(pool.get('scaleSetEvictionPolicy'))} with "
                       f"spotMaxPrice {show(pool.get('spotMaxPrice'))}; use 'Delete' and set spotMaxPrice "
                       "(-1 caps at the on-demand price).")
    return out


@applies_to(POOL_TYPES)
def gpu_pool_isolation(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-03: GPU pools are User pools, tainted and labelled; System pools have no GPU."""
    taint = str(cfg.get("gpuTaint", DEFAULT_GPU_TAINT))
    label = str(cfg.get("gpuNodeLabel", "accelerator"))
    out = []
    for p, pool in pools(type_, props):
        gpu = is_gpu_size(pool.get("vmSize"))
        if pool.get("mode") == "System":
            if gpu:
                out.append(f"{p}vmSize: found {show(pool.get('vmSize'))} on the System pool; run system pods on "
                           "a CPU size and put GPUs in a User pool.")
            continue
        if not gpu:
            continue
        if taint not in [str(t) for t in items(pool.get("nodeTaints"))]:
            out.append(f"{p}nodeTaints: found {show(pool.get('nodeTaints'))}; GPU pools must carry '{taint}' so "
                       "only GPU workloads (which tolerate it) land there.")
        if label not in mapping(pool.get("nodeLabels")):
            out.append(f"{p}nodeLabels: found no '{label}' label; label GPU nodes so workloads can select them.")
    return out
