"""The deployer reaches every data plane ``pulumi up`` touches (stack invariant, policy slm-reach-deployer).

ARM (the management plane) is public, so every ``azure-native`` resource can be created from anywhere. Some
resources are written through their own data plane by the machine running ``pulumi up``:

- Kubernetes objects, through the AKS API server the Kubernetes provider's kubeconfig points at;
- container images pushed by ``docker:index/image:Image`` to a registry's login server;
- IoT Edge deployments (a dynamic resource) through the IoT Hub's REST endpoint.

(Key Vault secrets of ``azure-native:keyvault:Secret`` go through ARM, not the vault's data plane, so its
firewall does not stand between the deployer and them.) A private API server, a registry or hub without
public access is reachable only from inside a VNet that resolves its private endpoint; a public one behind
authorized ranges or IP rules only from a fixed egress address it lists. A GitHub-hosted runner has neither.
Where the deployer runs is the typed setting ``deployer`` of the stack (``stacks.settings.DeployerSettings``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from policies.rules.stack import Finding, StackResource, by_urn, created_here
from policies.rules.tokens import (
    CLUSTER,
    DNS_ZONE_LINK,
    DYNAMIC_RESOURCE,
    IOT_HUB,
    K8S_PROVIDER,
    NAT_GATEWAY,
    PRIVATE_ENDPOINT,
    PUBLIC_IP,
    REGISTRY,
    SUBNET,
    VMSS,
    VNET,
)
from policies.rules.wire import get, items, mapping

DOCKER_IMAGE: Final = "docker:index/image:Image"
RUNNER_ROLE: Final = ("slm.io/role", "deploy-runner")
ZONES: Final[Mapping[str, str]] = {REGISTRY: "privatelink.azurecr.io", IOT_HUB: "privatelink.azure-devices.net"}
GROUP_IDS: Final[Mapping[str, str]] = {REGISTRY: "registry", IOT_HUB: "iotHub"}
FIX: Final = ("run `pulumi up` on the platform's runner inside the VNet (deployer.location: in-vnet-runner, "
              "docs/delivery.md#the-deploy-runner)")


@dataclass(frozen=True)
class Deployer:
    """Where ``pulumi up`` runs, from the stack's ``deployer`` settings."""

    location: str = "github-hosted"
    egress_cidrs: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> Deployer | None:
        """From the raw ``slm-platform:settings`` object (``deployer`` may be absent: the schema default);
        None without settings (not one of this platform's stacks: the plan decides, see ``deployer_reach``)."""
        if not settings:
            return None
        raw = mapping(settings.get("deployer"))
        return cls(location=str(raw.get("location") or "github-hosted"),
                   egress_cidrs=tuple(str(c) for c in items(raw.get("egress_cidrs"))))


@dataclass(frozen=True)
class _Vantage:
    """What the deployer can reach from: the VNets it sits in and the resources its egress IP comes from.

    ``vnets_unknown``: a runner subnet's VNet name is unknown at preview and comes from nothing this stack
    creates; the read already fails closed ("cannot verify"), so no finding is made up from it.
    """

    vnets: frozenset[str]
    egress_urns: frozenset[str]
    runner: StackResource | None
    vnets_unknown: bool = False


def _deps(r: StackResource) -> set[str]:
    return set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}


def _zone_of(link: StackResource, index: Mapping[str, StackResource]) -> str:
    """The private DNS zone a VirtualNetworkLink is in: its ``privateZoneName``, or (unknown at a first
    preview, because the zone is created in this stack) the name the zone is created under."""
    if created_here(link, "privateZoneName"):
        zones = [index[u] for u in link.property_dependencies["privateZoneName"] if u in index]
        return str(get(zones[0].props, "privateZoneName") or "") if len(zones) == 1 else ""
    return str(get(link.props, "privateZoneName"))


def _vnet_of_subnet(subnet: StackResource, index: Mapping[str, StackResource]) -> str | None:
    """The name of the VNet a subnet is in; ``None`` when it is unknown at preview (the read is recorded).

    A subnet of a VNet this stack creates has the VNet's name as an output, unknown at a first preview:
    then it is the name the VNet is created under, read from the VNet its ``virtualNetworkName`` comes from.
    """
    if created_here(subnet, "virtualNetworkName"):
        vnets = [index[u] for u in subnet.property_dependencies["virtualNetworkName"]
                 if u in index and index[u].type == VNET]
        if len(vnets) == 1:
            name = get(vnets[0].props, "virtualNetworkName")
            return str(name) if isinstance(name, str) else None
    name = get(subnet.props, "virtualNetworkName")
    if name is None or isinstance(name, str):
        return str(name or "")
    return None if not name else str(name)  # an Unknown is falsy and records the read


def _subnets_of(r: StackResource, index: Mapping[str, StackResource]) -> list[StackResource]:
    return [index[u] for u in sorted(_deps(r)) if u in index and index[u].type == SUBNET]


def _runners(resources: Sequence[StackResource]) -> list[StackResource]:
    return [r for r in resources if r.type == VMSS
            and str(mapping(get(r.props, "tags")).get(RUNNER_ROLE[0])) == RUNNER_ROLE[1]]


def _vantage(resources: Sequence[StackResource], deployer: Deployer) -> _Vantage:
    index = by_urn(resources)
    if deployer.location != "in-vnet-runner":
        return _Vantage(frozenset(), frozenset(), None)
    runners = _runners(resources)
    if not runners:
        return _Vantage(frozenset(), frozenset(), None)
    runner = runners[0]
    subnets = _subnets_of(runner, index)
    egress: set[str] = set()
    for subnet in subnets:
        for nat in (index[u] for u in _deps(subnet) if u in index and index[u].type == NAT_GATEWAY):
            egress |= {u for u in _deps(nat) if u in index and index[u].type == PUBLIC_IP}
    names = [_vnet_of_subnet(s, index) for s in subnets]
    return _Vantage(frozenset(n for n in names if n is not None), frozenset(egress), runner,
                    vnets_unknown=None in names)


def _covered(cidrs: Sequence[str], allowed: Sequence[str]) -> bool:
    """Every deployer CIDR lies inside one of the allowed ranges (IP rules may be bare addresses)."""
    nets = []
    for a in allowed:
        try:
            nets.append(ipaddress.ip_network(a, strict=False))
        except ValueError:
            continue
    return bool(cidrs) and all(any(ipaddress.ip_network(c, strict=False).subnet_of(n)  # type: ignore[arg-type]
                                   for n in nets if n.version == ipaddress.ip_network(c, strict=False).version)
                               for c in cidrs)


def _where(deployer: Deployer, vantage: _Vantage) -> str:
    if deployer.location == "in-vnet-runner":
        if vantage.runner is None:
            return "deployer.location 'in-vnet-runner', but the plan has no deploy runner (a VM scale set tagged " \
                   "slm.io/role=deploy-runner)"
        return f"the in-VNet runner {vantage.runner.name!r} (VNet {', '.join(sorted(vantage.vnets)) or '?'})"
    egress = f", egress {', '.join(deployer.egress_cidrs)}" if deployer.egress_cidrs else ", no fixed egress IP"
    return f"deployer.location {deployer.location!r}{egress}"


def _cluster_finding(cluster: StackResource, resources: Sequence[StackResource], deployer: Deployer,
                     vantage: _Vantage) -> str | None:
    index = by_urn(resources)
    access = mapping(get(cluster.props, "apiServerAccessProfile"))
    where = _where(deployer, vantage)
    if access.get("enablePrivateCluster") is True:
        names = [_vnet_of_subnet(s, index) for s in _subnets_of(cluster, index)]
        if vantage.vnets_unknown or None in names:
            return None  # an unknown VNet name: already a "cannot verify", never compared as ''
        vnets = {n for n in names if n is not None}
        if vantage.vnets and (not vnets or vnets & vantage.vnets):
            return None
        extra = "" if access.get("enablePrivateClusterPublicFQDN") else ", no public FQDN"
        extra += ", run-command disabled" if access.get("disableRunCommand") else ""
        return (f"apiServerAccessProfile: the API server of {cluster.name!r} is private (enablePrivateCluster{extra})"
                f" and the deployer is {where}, outside VNet {', '.join(sorted(vnets)) or '(unknown)'}: no Kubernetes "
                f"resource can be applied; {FIX}.")
    ranges = [str(r) for r in items(access.get("authorizedIPRanges"))]
    if not ranges:
        return None
    if _covered(deployer.egress_cidrs, ranges) or (vantage.egress_urns and vantage.egress_urns & _deps(cluster)):
        return None
    return (f"apiServerAccessProfile.authorizedIPRanges: {ranges} of {cluster.name!r} do not admit the deployer "
            f"({where}): no Kubernetes resource can be applied; list the deployer's fixed egress in "
            f"deployer.egress_cidrs and cluster.authorized_ip_ranges, or {FIX} (its NAT IP is admitted).")


def _private_path(target: StackResource, resources: Sequence[StackResource], vnets: frozenset[str]) -> bool:
    """A private endpoint of ``target`` (right group id) in one of ``vnets``, whose DNS zone is linked there."""
    index = by_urn(resources)
    group, zone = GROUP_IDS[target.type], ZONES[target.type]
    endpoint = any(target.urn in _deps(pe) and any(
        group in [str(g) for g in items(mapping(c).get("groupIds"))]
        for c in items(get(pe.props, "privateLinkServiceConnections")))
        and any(_vnet_of_subnet(s, index) in vnets for s in _subnets_of(pe, index))
        for pe in resources if pe.type == PRIVATE_ENDPOINT)
    vnet_urns = {r.urn for r in resources if r.type == VNET and str(get(r.props, "virtualNetworkName")) in vnets}
    linked = any(_zone_of(link, index) == zone and _deps(link) & vnet_urns
                 for link in resources if link.type == DNS_ZONE_LINK)
    return endpoint and linked


def _data_plane_finding(target: StackResource, what: str, resources: Sequence[StackResource],
                        deployer: Deployer, vantage: _Vantage) -> str | None:
    """Registry push / hub REST: public access off needs a private path; a Deny firewall needs the egress."""
    props = target.props
    public = get(props, "publicNetworkAccess") or get(props, "properties.publicNetworkAccess")
    where = _where(deployer, vantage)
    if vantage.vnets_unknown:
        return None  # where the runner sits is unknown: already a "cannot verify", never compared as ''
    private_ok = bool(vantage.vnets) and _private_path(target, resources, vantage.vnets)
    if public == "Disabled":
        if private_ok:
            return None
        zone, group = ZONES[target.type], GROUP_IDS[target.type]
        hint = (f"a private endpoint (group '{group}') in the runner's VNet and the {zone} zone linked to it"
                if vantage.vnets else FIX)
        return (f"publicNetworkAccess: Disabled on {target.name!r}, so {what} needs a private path, and the "
                f"deployer is {where}; add {hint}.")
    rules = mapping(get(props, "networkRuleSet"))
    if str(rules.get("defaultAction")) != "Deny" or private_ok:
        return None
    allowed = [str(mapping(r).get("iPAddressOrRange") or mapping(r).get("ipAddressOrRange"))
               for r in items(rules.get("ipRules"))]
    if _covered(deployer.egress_cidrs, allowed) or (vantage.egress_urns and vantage.egress_urns & _deps(target)):
        return None
    return (f"networkRuleSet: defaultAction Deny on {target.name!r} with IP rules {allowed} that do not admit the "
            f"deployer ({where}), so {what} is refused; add its fixed egress to the rules or {FIX}.")


def deployer_reach(resources: Sequence[StackResource], cfg: Mapping[str, Any],
                   deployer: Deployer | None = None) -> list[Finding]:
    """Every data plane ``pulumi up`` writes to is reachable from where the stack says it runs."""
    del cfg
    if deployer is None:  # no stack settings: a tagged runner in the plan means `pulumi up` runs on it
        deployer = Deployer("in-vnet-runner") if _runners(resources) else Deployer()
    if deployer.location == "workstation" and not deployer.egress_cidrs and not any(
            r.type.startswith("azure-native:") for r in resources):
        return []  # the local tier: a laptop cluster next to the deployer, no Azure data plane
    vantage = _vantage(resources, deployer)
    out: list[Finding] = []
    touched_clusters = {u for p in resources if p.type == K8S_PROVIDER for u in _deps(p)}
    for cluster in (r for r in resources if r.type == CLUSTER and r.urn in touched_clusters):
        message = _cluster_finding(cluster, resources, deployer, vantage)
        if message:
            out.append(Finding(message, cluster))
    pushed = {u for img in resources if img.type == DOCKER_IMAGE and not get(img.props, "skipPush") for u in _deps(img)}
    applied = {u for d in resources if d.type == DYNAMIC_RESOURCE
               and (created_here(d, "hubHostName") or get(d.props, "hubHostName")) for u in _deps(d)}
    for target in resources:
        if target.type == REGISTRY and target.urn in pushed:
            message = _data_plane_finding(target, "the image push", resources, deployer, vantage)
        elif target.type == IOT_HUB and target.urn in applied:
            message = _data_plane_finding(target, "applying IoT Edge deployments (hub REST)", resources, deployer,
                                          vantage)
        else:
            continue
        if message:
            out.append(Finding(message, target))
    return out
