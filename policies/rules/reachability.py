"""Stack invariants: every caller in the cluster reaches what it calls, through firewalls and NetworkPolicies.

- ``metrics_scraper``: the scraper of the chosen monitoring mode (in-cluster Prometheus in the
  kube-prometheus-stack namespace, ``monitoring``; Azure Managed Prometheus ``ama-metrics`` in
  ``kube-system``) is admitted by every NetworkPolicy that guards a port it scrapes; ``ama-metrics`` shares
  ``kube-system`` with every add-on, so a peer admitting it must also select its pods (``AMA_METRICS_POD_LABELS``).
- ``firewalled_data``: pods and nodes reach the Key Vaults, storage accounts and registries they use:
  public with an open firewall; or a private endpoint whose private DNS zone is linked to the
  cluster's VNet; or a virtual-network rule for the cluster's subnet with the service endpoint on it.
  IP rules never count: the cluster's outbound IP is assigned by Azure at creation.
- ``private_dns``: every resource with public network access Disabled has a private endpoint, and a DNS
  zone group registering it in each zone its clients resolve, linked to the cluster's (or a) VNet.

Not checkable offline: effective routes, custom DNS servers, NSGs on the private-endpoint subnet,
and the actual outbound IP; see docs/components/*.md for how to check them after ``pulumi up``.
"""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from policies.rules.plan_graph import (
    by_urn,
    clusters_running,
    deps_of,
    grants,
    identities_in,
    known,
    listed,
    physical_name,
    refers_to,
    role_assignments,
    scope_covers,
)
from policies.rules.stack import Finding, StackResource, created_here, of_type, workloads_of
from policies.rules.tokens import (
    CLUSTER,
    DNS_ZONE_GROUP,
    DNS_ZONE_LINK,
    FEDERATED_CREDENTIAL,
    HELM_RELEASE,
    MANAGED_PROMETHEUS_GROUP,
    NETWORK_POLICY,
    PRIVATE_ENDPOINT,
    PROMETHEUS_GROUP,
    SECRET_PROVIDER_CLASS,
    SERVICE,
    SUBNET,
)
from policies.rules.wire import (
    WORKLOAD_TYPES,
    get,
    items,
    mapping,
    metadata_labels,
    namespace_of,
    pod_spec,
    selector_matches,
)


@dataclass(frozen=True)
class Private:
    """How one Azure type is reached privately and through its firewall."""

    group: str
    zones: tuple[str, ...]
    acl: str
    """Path of the firewall object (``defaultAction``, ``virtualNetworkRules``)."""
    vnet_rule_key: str
    service_endpoint: str


PRIVATE: Final[Mapping[str, Private]] = {
    "azure-native:keyvault:Vault": Private("vault", ("privatelink.vaultcore.azure.net",), "properties.networkAcls",
                                           "id", "Microsoft.KeyVault"),
    "azure-native:storage:StorageAccount": Private("blob", ("privatelink.blob.core.windows.net",), "networkRuleSet",
                                                   "virtualNetworkResourceId", "Microsoft.Storage"),
    "azure-native:containerregistry:Registry": Private("registry", ("privatelink.azurecr.io",), "networkRuleSet",
                                                       "", ""),
    "azure-native:cognitiveservices:Account": Private(
        "account", ("privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
                    "privatelink.services.ai.azure.com"), "properties.networkAcls", "id", "Microsoft.CognitiveServices"),
    "azure-native:iothub:IotHubResource": Private("iotHub", ("privatelink.azure-devices.net",),
                                                  "properties.networkRuleSets", "", ""),
    "azure-native:dashboard:Grafana": Private("grafana", ("privatelink.grafana.azure.com",), "", "", ""),
}
"""Private endpoint group id and private DNS zones (learn.microsoft.com/azure/private-link/private-endpoint-dns)."""


def _public(r: StackResource) -> bool:
    value = get(r.props, "properties.publicNetworkAccess") or get(r.props, "publicNetworkAccess")
    return str(value) != "Disabled"


# --------------------------------------------------------------------------- private endpoints and DNS


def _cluster_vnet(c: StackResource, index: Mapping[str, StackResource]) -> tuple[StackResource | None,
                                                                                 StackResource | None]:
    """(subnet, vnet) the cluster's nodes join, when the plan declares them."""
    subnet = next((index[u] for u in deps_of(c, "agentPoolProfiles") if u in index and index[u].type == SUBNET), None)
    if subnet is None:
        return None, None
    return subnet, next((index[u] for u in deps_of(subnet, "virtualNetworkName") if u in index), None)


def _endpoints(target: StackResource, spec: Private, resources: Sequence[StackResource]) -> list[StackResource]:
    out = []
    for pe in of_type(resources, PRIVATE_ENDPOINT):
        for conn in listed(get(pe.props, "privateLinkServiceConnections")):
            points = refers_to(pe, "privateLinkServiceConnections", target, dict.get(conn, "privateLinkServiceId"))
            if points and spec.group in [str(g) for g in items(conn.get("groupIds"))]:
                out.append(pe)
    return out


def _dns_gap(pe: StackResource, spec: Private, vnet: StackResource | None, resources: Sequence[StackResource],
             index: Mapping[str, StackResource]) -> str | None:
    """What is missing for ``pe``'s name to resolve from ``vnet`` (None: nothing)."""
    groups = [g for g in of_type(resources, DNS_ZONE_GROUP) if pe.urn in deps_of(g, "privateEndpointName")]
    zones = [index[u] for g in groups for u in deps_of(g, "privateDnsZoneConfigs") if u in index]
    names = {str(get(z.props, "privateZoneName") or physical_name(z)) for z in zones}
    for g in groups:
        names |= {str(c.get("privateDnsZoneId") or "").rsplit("/", 1)[-1] for c in listed(
            get(g.props, "privateDnsZoneConfigs"))  # a zone this stack creates counts by its input name (above)
            if not created_here(g, "privateDnsZoneConfigs", dict.get(c, "privateDnsZoneId"))}
    missing = [z for z in spec.zones if z not in names]
    if missing:
        return (f"no PrivateDnsZoneGroup on {pe.name!r} registers it in {', '.join(missing)}; add one whose "
                "privateDnsZoneConfigs name that zone")
    for zone in spec.zones:
        zone_res = [z for z in zones if str(get(z.props, "privateZoneName")) == zone]
        links = [ln for ln in of_type(resources, DNS_ZONE_LINK) if any(z.urn in deps_of(ln, "privateZoneName") for z in zone_res)
                 or (not created_here(ln, "privateZoneName") and get(ln.props, "privateZoneName") == zone)]
        if not any(vnet is None or vnet.urn in deps_of(ln, "virtualNetwork") or refers_to(
                ln, "virtualNetwork", vnet, get(ln.props, "virtualNetwork.id")) for ln in links):
            where = f"VNet {vnet.name!r}" if vnet is not None else "a VNet"
            return f"zone {zone} is not linked to {where}; add a privatedns VirtualNetworkLink for it"
    return None


def _private_gap(target: StackResource, vnet: StackResource | None, resources: Sequence[StackResource],
                 index: Mapping[str, StackResource]) -> str | None:
    spec = PRIVATE[target.type]
    pes = _endpoints(target, spec, resources)
    if not pes:
        return (f"no private endpoint (group '{spec.group}') targets it; add an azure-native:network:PrivateEndpoint "
                f"with privateLinkServiceId its id and a DNS zone group for {', '.join(spec.zones)}")
    gaps = [_dns_gap(pe, spec, vnet, resources, index) for pe in pes]
    return None if None in gaps else gaps[0]


def private_dns(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """A resource with public network access Disabled has a private endpoint and DNS for its clients' VNet."""
    index = by_urn(resources)
    vnets = [v for c in of_type(resources, CLUSTER) if (v := _cluster_vnet(c, index)[1]) is not None] or [None]
    out = []
    for target in (r for r in resources if r.type in PRIVATE and not _public(r)):
        for vnet in vnets:
            gap = _private_gap(target, vnet, resources, index)
            if gap is not None:
                out.append(Finding(f"publicNetworkAccess: found 'Disabled' on {target.name!r} but {gap}; "
                                   "otherwise no client can resolve or reach it.", target))
                break
    return out


# --------------------------------------------------------------------------- firewalls


def _clients(target: StackResource, resources: Sequence[StackResource],
             index: Mapping[str, StackResource]) -> list[tuple[str, StackResource]]:
    """(who, on which cluster) calls ``target``: the CSI driver, federated blob readers, image pulls."""
    clusters = of_type(resources, CLUSTER)
    if target.type == "azure-native:keyvault:Vault":
        name = physical_name(target).lower()
        return [(f"the CSI driver for {s.name!r}", c) for s in of_type(resources, SECRET_PROVIDER_CLASS) if target.urn in deps_of(s, "spec")
                or str(get(s.props, "spec.parameters.keyvaultName") or "").lower() == name
                for c in clusters_running(s, clusters, index)]
    if target.type == "azure-native:storage:StorageAccount":
        issuers = {u: [index[c] for c in deps_of(f, "issuer") if c in index and index[c].type == CLUSTER]
                   for f in of_type(resources, FEDERATED_CREDENTIAL) for u in deps_of(f, "resourceName")}
        return [(f"pods federated to {i.name!r}", c) for ra in role_assignments(resources) if scope_covers(ra, target)
                and grants(ra, ("Storage Blob Data Reader", "Storage Blob Data Contributor"))
                for i in identities_in(ra, "principalId", index) for c in issuers.get(i.urn, [])]
    if target.type == "azure-native:containerregistry:Registry":
        host = f"{physical_name(target).lower()}.azurecr.io/"
        return [(f"the kubelet pulling for {w.name!r}", c) for w in resources if w.type in WORKLOAD_TYPES
                and (pod := pod_spec(w.type, w.props)) is not None
                and any(i.image.lower().startswith(host) for i in pod.containers())
                for c in clusters_running(w, clusters, index)]
    return []


def _vnet_rule_ok(target: StackResource, subnet: StackResource) -> bool:
    spec = PRIVATE[target.type]
    if not spec.vnet_rule_key:
        return False
    acl_key = spec.acl.split(".", 1)[0]
    rules = listed(get(target.props, f"{spec.acl}.virtualNetworkRules"))
    admitted = any(refers_to(target, acl_key, subnet, r.get(spec.vnet_rule_key)) and
                   (subnet.urn in deps_of(target, acl_key) or known(r.get(spec.vnet_rule_key))) for r in rules)
    endpoints = [str(e.get("service")) for e in listed(get(subnet.props, "serviceEndpoints"))]
    return admitted and spec.service_endpoint in endpoints


def _firewall_gap(target: StackResource, cluster: StackResource, resources: Sequence[StackResource],
                  index: Mapping[str, StackResource]) -> str | None:
    spec = PRIVATE[target.type]
    subnet, vnet = _cluster_vnet(cluster, index)
    private = _private_gap(target, vnet, resources, index)
    if private is None:
        return None
    if not _public(target):
        return f"its public access is Disabled and {private}"
    default = str(get(target.props, f"{spec.acl}.defaultAction") or "Allow") if spec.acl else "Allow"
    if default != "Deny":
        return None
    if subnet is not None and _vnet_rule_ok(target, subnet):
        return None
    fix = (f"add a virtual-network rule for subnet {subnet.name!r} with the {spec.service_endpoint} service "
           "endpoint on that subnet, or " if subnet is not None and spec.vnet_rule_key else "")
    return (f"its firewall denies by default and admits neither the cluster's subnet nor a private endpoint (IP "
            f"rules cannot admit the cluster: its outbound IP is assigned by Azure); {fix}give it a private endpoint "
            f"({private})")


def firewalled_data(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Pods and nodes of each cluster reach the vaults, storage and registries they call."""
    index = by_urn(resources)
    out = []
    for target in (r for r in resources if r.type in PRIVATE):
        first: dict[str, tuple[str, StackResource]] = {}
        for who, c in _clients(target, resources, index):
            first.setdefault(c.urn, (who, c))
        for who, c in first.values():
            gap = _firewall_gap(target, c, resources, index)
            if gap is not None:
                out.append(Finding(f"network: {who} on {c.name!r} calls {target.name!r}, but {gap}.", target))
    return out


# --------------------------------------------------------------------------- metrics scrapers


@dataclass(frozen=True)
class Scraper:
    """Who scrapes for one monitor: a name, its namespace and the labels of its pods."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    shared_namespace: bool = False
    """The scraper lives in a namespace other workloads share (``kube-system``): a peer must also name its pods."""


AMA_METRICS_POD_LABELS: Final = {"rsName": "ama-metrics"}
"""The pod labels of Azure Managed Prometheus's collector ReplicaSet, which scrapes ServiceMonitor and PodMonitor
targets (the target allocator hands them to it; the ``ama-metrics-node`` DaemonSet scrapes node targets only).
Source: Azure/prometheus-collector ``otelcollector/deploy/addon-chart/azure-monitor-metrics-addon/templates/
ama-metrics-deployment.yaml`` @ ``51cee7800dfa7b7405b77bb79d3e41a15ea9a975`` (2026-07-02): Deployment ``ama-metrics``
in ``kube-system``, ``spec.selector.matchLabels`` and the pod template's labels both ``rsName: ama-metrics``."""


def _scraper(monitor: StackResource, resources: Sequence[StackResource]) -> Scraper:
    if monitor.type.startswith(MANAGED_PROMETHEUS_GROUP):
        return Scraper("Azure Managed Prometheus (ama-metrics)", "kube-system", AMA_METRICS_POD_LABELS,
                       shared_namespace=True)
    release = next((r for r in of_type(resources, HELM_RELEASE) if "kube-prometheus-stack" in str(get(r.props, "chart"))),
                   None)
    ns = str(get(release.props, "namespace") or "monitoring") if release is not None else "monitoring"
    return Scraper(f"Prometheus ({ns})", ns, {"app.kubernetes.io/name": "prometheus"})


def _in_namespaces(monitor: StackResource, ns: str) -> bool:
    sel = mapping(get(monitor.props, "spec.namespaceSelector"))
    if sel.get("any") is True:
        return True
    names = [str(n) for n in items(sel.get("matchNames"))]
    return ns in names if names else namespace_of(monitor.props) == ns


def _pod_labels(w: StackResource) -> dict[str, str]:
    pod = pod_spec(w.type, w.props)
    return pod.labels if pod else {}


def _container_ports(w: StackResource) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in items(get(w.props, "spec.template.spec.containers")):
        for p in items(mapping(c).get("ports")):
            port = mapping(p)
            if isinstance(port.get("containerPort"), int | float):
                out[str(port.get("name") or port["containerPort"])] = int(port["containerPort"])
    return out


def _port_number(value: object, w: StackResource) -> int | None:
    if isinstance(value, int | float):
        return int(value)
    return _container_ports(w).get(str(value))


def _targets(monitor: StackResource, resources: Sequence[StackResource]) -> list[tuple[StackResource, int]]:
    """(workload, container port) pairs the monitor scrapes."""
    workloads = workloads_of(resources)
    out: list[tuple[StackResource, int]] = []
    if monitor.type.endswith(":PodMonitor"):
        for w in workloads:
            if _in_namespaces(monitor, namespace_of(w.props)) and selector_matches(
                    get(monitor.props, "spec.selector", {}), _pod_labels(w)):
                for ep in listed(get(monitor.props, "spec.podMetricsEndpoints")):
                    port = _port_number(ep.get("targetPort") or ep.get("port"), w)
                    out += [(w, port)] if port is not None else []
        return out
    for svc in of_type(resources, SERVICE):
        ns = namespace_of(svc.props)
        if not _in_namespaces(monitor, ns) or not selector_matches(get(monitor.props, "spec.selector", {}),
                                                                  metadata_labels(svc.props)):
            continue
        sel = mapping(get(svc.props, "spec.selector"))
        backends = [w for w in workloads if namespace_of(w.props) == ns and sel
                    and all(_pod_labels(w).get(k) == str(v) for k, v in sel.items())]
        ports = {str(mapping(p).get("name")): mapping(p).get("targetPort") or mapping(p).get("port")
                 for p in items(get(svc.props, "spec.ports"))}
        for ep in listed(get(monitor.props, "spec.endpoints")):
            ref = ep.get("targetPort") if ep.get("targetPort") is not None else ports.get(str(ep.get("port")))
            for w in backends:
                port = _port_number(ref, w)
                out += [(w, port)] if port is not None else []
    return out


def _peer_admits(peer: Mapping[str, Any], scraper: Scraper, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return False
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    ns_ok = selector_matches(ns_sel, {"kubernetes.io/metadata.name": scraper.namespace}) if ns_sel is not None \
        else scraper.namespace == policy_ns
    return ns_ok and (pod_sel is None or selector_matches(pod_sel, scraper.labels))


def _rule_admits(rule: Mapping[str, Any], scraper: Scraper, port: int, w: StackResource, policy_ns: str) -> bool:
    peers = listed(rule.get("from"))
    return _port_ok(rule, port, w) and (not peers or any(_peer_admits(p, scraper, policy_ns) for p in peers))


def _port_ok(rule: Mapping[str, Any], port: int, w: StackResource) -> bool:
    ports = listed(rule.get("ports"))
    return not ports or any(_port_number(p.get("port"), w) == port or p.get("port") is None for p in ports)


def _whole_namespace(rule: Mapping[str, Any], scraper: Scraper, port: int, w: StackResource) -> bool:
    """The rule admits every pod of the scraper's shared namespace on ``port`` (a namespace-only peer)."""
    return _port_ok(rule, port, w) and any(
        "ipBlock" not in p and p.get("podSelector") is None and p.get("namespaceSelector") is not None
        and selector_matches(p.get("namespaceSelector"), {"kubernetes.io/metadata.name": scraper.namespace})
        for p in listed(rule.get("from")))


def _selector_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _guards(w: StackResource, policies: Sequence[StackResource]) -> list[StackResource]:
    """NetworkPolicies restricting ingress to ``w``'s pods."""
    ns = namespace_of(w.props)
    return [p for p in policies if namespace_of(p.props) == ns
            and selector_matches(get(p.props, "spec.podSelector", {}), _pod_labels(w))
            and ("Ingress" in [str(t) for t in items(get(p.props, "spec.policyTypes"))]
                 or get(p.props, "spec.ingress") is not None)]


def metrics_scraper(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Every NetworkPolicy guarding a scraped metrics port admits the monitoring mode's scraper."""
    policies = of_type(resources, NETWORK_POLICY)
    out = []
    monitors = [r for r in resources if r.type.startswith((MANAGED_PROMETHEUS_GROUP, PROMETHEUS_GROUP))
                and r.type.endswith((":ServiceMonitor", ":PodMonitor"))]
    for m in monitors:
        scraper = _scraper(m, resources)
        wanted = f"namespaceSelector kubernetes.io/metadata.name={scraper.namespace}" + (
            f" and podSelector {_selector_text(scraper.labels)}" if scraper.shared_namespace else "")
        for w, port in _targets(m, resources):
            guards = _guards(w, policies)
            names = ", ".join(repr(p.name) for p in guards)
            rules = [(p, rule) for p in guards for rule in listed(get(p.props, "spec.ingress"))]
            if scraper.shared_namespace:
                broad = sorted({p.name for p, rule in rules if _whole_namespace(rule, scraper, port, w)})
                if broad:
                    out.append(Finding(
                        f"network: {', '.join(map(repr, broad))} admit every pod of {scraper.namespace!r} to port "
                        f"{port} of {w.name!r}, not only {scraper.name}; name its pods: {wanted}.", m))
            if not guards or any(_rule_admits(rule, scraper, port, w, namespace_of(p.props)) for p, rule in rules):
                continue
            out.append(Finding(
                f"network: {m.name!r} is scraped by {scraper.name} from namespace {scraper.namespace!r}, but the "
                f"NetworkPolicies guarding port {port} of {w.name!r} ({names}) admit no traffic from it, so no "
                "metrics arrive (autoscaling and SLO alerts go blind); add an ingress rule from "
                f"{wanted} on port {port}.", m))
    return out
