"""Stack rules: checks that need more than one resource (private endpoints, coverage, budget)."""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from policies.rules import cost
from policies.rules.aks import is_gpu_size, pools
from policies.rules.tokens import (
    AGENT_POOL,
    CLUSTER,
    HPA,
    NETWORK_POLICY,
    PDB,
    PRIVATE_ENDPOINT,
    SCALED_OBJECT,
    SERVICE,
    STACK_REFERENCE,
)
from policies.rules.wire import (
    UNKNOWN_SENTINELS,
    WORKLOAD_TYPES,
    Props,
    Unknown,
    get,
    is_inference,
    items,
    mapping,
    metadata_labels,
    namespace_of,
    number,
    pod_spec,
    selector_matches,
    show,
)

DIAGNOSTIC_SETTINGS: Final = frozenset({"azure-native:insights:DiagnosticSetting",
                                        "azure-native:monitor:DiagnosticSetting"})
SERVICE_MONITORS: Final = frozenset({
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    "kubernetes:azmonitoring.coreos.com/v1:ServiceMonitor",  # Azure Managed Prometheus (ama-metrics)
})
POD_MONITORS: Final = frozenset({
    "kubernetes:monitoring.coreos.com/v1:PodMonitor",
    "kubernetes:azmonitoring.coreos.com/v1:PodMonitor",
})
REQUIRED_LOGS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    CLUSTER: (("kube-audit", "kube-audit-admin"), ("guard",)),
    "azure-native:cognitiveservices:Account": (("Audit",), ("RequestResponse",)),
    "azure-native:keyvault:Vault": (("AuditEvent",),),
}
"""Per type: groups of log categories; each group needs one enabled category (or the allLogs/audit group)."""


@dataclass(frozen=True)
class StackResource:
    """One resource of the stack as the rules see it (pure: no pulumi types)."""

    type: str
    name: str
    urn: str
    props: Props
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    provider: str = ""
    """URN of the resource's provider (empty for default providers the engine did not send)."""


@dataclass(frozen=True)
class Finding:
    """A stack-rule violation, attributed to a resource when there is one."""

    message: str
    resource: StackResource | None = None


@dataclass(frozen=True)
class _Index:
    resources: tuple[StackResource, ...]
    by_urn: Mapping[str, StackResource]
    by_type: Mapping[str, tuple[StackResource, ...]]
    workloads: tuple[StackResource, ...]


_last_index: _Index | None = None


def _index(resources: tuple[StackResource, ...]) -> _Index:
    """By URN, by type and the workloads of the stack tuple the pack hands every stack rule of a call.

    The rules look these up for every workload, policy or pool (``cluster_of`` rebuilt the URN index
    1,483 times for 10,035 resources): only the last tuple's index is kept, a tuple cannot change, and
    it is held, so its identity cannot be reused meanwhile.
    """
    global _last_index  # noqa: PLW0603 (a one-entry cache)
    last = _last_index
    if last is not None and last.resources is resources:
        return last
    by_urn: dict[str, StackResource] = {}
    by_type: dict[str, list[StackResource]] = {}
    for r in resources:
        by_urn[r.urn] = r
        by_type.setdefault(r.type, []).append(r)
    last = _last_index = _Index(resources, MappingProxyType(by_urn),
                                MappingProxyType({k: tuple(v) for k, v in by_type.items()}),
                                tuple(r for r in resources if r.type in WORKLOAD_TYPES))
    return last


def by_urn(resources: Sequence[StackResource]) -> Mapping[str, StackResource]:
    """Resources keyed by URN (read-only; the last duplicate wins, as a dict built in order)."""
    if type(resources) is tuple:
        return _index(resources).by_urn
    return {r.urn: r for r in resources}


def of_type(resources: Sequence[StackResource], type_: str) -> list[StackResource]:
    """The resources of one type token, in stack order."""
    if type(resources) is tuple:
        return list(_index(resources).by_type.get(type_, ()))
    return [r for r in resources if r.type == type_]


def workloads_of(resources: Sequence[StackResource]) -> list[StackResource]:
    """The resources that carry a pod spec (``WORKLOAD_TYPES``), in stack order."""
    if type(resources) is tuple:
        return list(_index(resources).workloads)
    return [r for r in resources if r.type in WORKLOAD_TYPES]


def urn_type(urn: str) -> str:
    """The type token of a URN (the last of its parent type chain)."""
    return urn.split("::")[2].rsplit("$", 1)[-1] if urn.count("::") >= 3 else ""


def created_here(r: StackResource, prop: str, value: object = None) -> bool:
    """``value`` (default: top-level input ``prop`` of ``r``) is unknown only because it is an output of
    resources this stack creates (a first preview: new ids, names, principal ids), as its property
    dependencies on ``prop`` show. Reads nothing, so it never makes a "cannot verify" by itself.

    An unknown with no dependency, or one flowing from a ``StackReference`` (another stack's output,
    outside what this preview shows), is not: the rule's ordinary read of it still fails closed.
    """
    raw = dict.get(r.props, prop) if value is None and isinstance(r.props, dict) else value
    unknown = isinstance(raw, Unknown) or (isinstance(raw, str) and raw in UNKNOWN_SENTINELS)
    deps = r.property_dependencies.get(prop, ())
    return unknown and bool(deps) and all(urn_type(u) != STACK_REFERENCE for u in deps)


def _physical(r: StackResource, key: str) -> str:
    return str(get(r.props, key) or r.name)


def _refers_to(ref: StackResource, prop: str, target: StackResource, id_segment: str) -> bool:
    """``ref.prop`` points at ``target``: through its property dependencies, or by its ARM id."""
    if target.urn in ref.property_dependencies.get(prop, ()):
        return True
    if created_here(ref, prop):  # an id of another resource this stack creates: not target's
        return False
    return f"/{id_segment}/{_physical(target, id_segment[:-1] + 'Name')}".lower() in str(get(ref.props, prop)).lower()


def private_endpoints(resources: Sequence[StackResource], cfg: Mapping[str, Any], *, target_type: str,
                      group_id: str, id_segment: str) -> list[Finding]:
    """AIF-04 / KV-03: every private account (vault) has a private endpoint with the right group id."""
    pes = of_type(resources, PRIVATE_ENDPOINT)
    out = []
    for t in (r for r in resources if r.type == target_type):
        pna = get(t.props, "properties.publicNetworkAccess") or get(t.props, "publicNetworkAccess")
        if pna != "Disabled" and not cfg.get("requireForAll", False):
            continue
        found = False
        for pe in pes:
            for conn in items(get(pe.props, "privateLinkServiceConnections")):
                c = mapping(conn)
                pe_ref = StackResource(pe.type, pe.name, pe.urn, {"privateLinkServiceId": dict.get(c, "privateLinkServiceId")},
                                       property_dependencies={"privateLinkServiceId":
                                                              pe.property_dependencies.get("privateLinkServiceConnections", ())})
                if _refers_to(pe_ref, "privateLinkServiceId", t, id_segment) and \
                        group_id in [str(g) for g in items(c.get("groupIds"))]:
                    found = True
        if not found:
            out.append(Finding(f"privateEndpoint: found none for {t.name!r}; add an azure-native:network:"
                               f"PrivateEndpoint whose privateLinkServiceConnections[*].privateLinkServiceId is its id "
                               f"and groupIds contains '{group_id}'.", t))
    return out


def diagnostic_settings(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """OPS-01: audit logs of clusters, Foundry accounts and vaults go to a workspace."""
    settings = [r for r in resources if r.type in DIAGNOSTIC_SETTINGS]
    segments = {CLUSTER: "managedClusters", "azure-native:cognitiveservices:Account": "accounts",
                "azure-native:keyvault:Vault": "vaults"}
    names = {CLUSTER: "resourceName", "azure-native:cognitiveservices:Account": "accountName",
             "azure-native:keyvault:Vault": "vaultName"}
    out = []
    for t in (r for r in resources if r.type in REQUIRED_LOGS):
        mine = [s for s in settings if t.urn in s.property_dependencies.get("resourceUri", ())
                or (not created_here(s, "resourceUri") and f"/{segments[t.type]}/{_physical(t, names[t.type])}".lower()
                    in str(get(s.props, "resourceUri")).lower())]
        if not mine:
            out.append(Finding(f"diagnosticSettings: found none for {t.name!r}; add a DiagnosticSetting with "
                               "resourceUri set to its id and a workspaceId.", t))
            continue
        enabled: set[str] = set()
        for s in mine:
            if not created_here(s, "workspaceId") and not get(s.props, "workspaceId"):
                out.append(Finding(f"workspaceId: found unset on {s.name!r}; send the logs to Log Analytics.", s))
            for log in items(get(s.props, "logs")):
                lg = mapping(log)
                if lg.get("enabled") is not False:
                    enabled.add(str(lg.get("category") or lg.get("categoryGroup")))
        if enabled & {"allLogs", "audit"}:
            continue
        missing = [g[0] for g in REQUIRED_LOGS[t.type] if not enabled.intersection(g)]
        if missing:
            out.append(Finding(f"logs: found {show(sorted(enabled))} for {t.name!r}; enable {', '.join(missing)} "
                               "(or the 'audit' category group).", mine[0]))
    return out


def _pod_labels(r: StackResource) -> dict[str, str]:
    pod = pod_spec(r.type, r.props)
    return pod.labels if pod else {}


def network_policy_coverage(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """K8S-12: every workload is selected by a NetworkPolicy; each namespace has default-deny."""
    policies = of_type(resources, NETWORK_POLICY)
    out = []
    for w in workloads_of(resources):
        ns = namespace_of(w.props)
        if not any(namespace_of(p.props) == ns and selector_matches(get(p.props, "spec.podSelector", {}),
                                                                    _pod_labels(w)) for p in policies):
            out.append(Finding(f"spec.template.metadata.labels: found no NetworkPolicy in namespace {ns!r} selecting "
                               f"{w.name!r}; add one that allows only its callers (the gateway, Prometheus).", w))
    kinds = ["Ingress", "Egress"] if cfg.get("requireDefaultDenyEgress", False) else ["Ingress"]
    for ns in sorted({namespace_of(w.props) for w in workloads_of(resources)}):
        for kind in kinds:
            deny = [p for p in policies if namespace_of(p.props) == ns and not mapping(get(p.props, "spec.podSelector"))
                    .get("matchLabels") and not items(get(p.props, "spec.podSelector.matchExpressions"))
                    and kind in [str(t) for t in items(get(p.props, "spec.policyTypes"))]
                    and not items(get(p.props, f"spec.{kind.lower()}"))]
            if not deny:
                out.append(Finding(f"namespace {ns!r}: found no default-deny {kind} NetworkPolicy; add one with an "
                                   f"empty podSelector and policyTypes [{kind}].", None))
    return out


def _service_selects(svc: StackResource, w: StackResource) -> bool:
    sel = mapping(get(svc.props, "spec.selector"))
    return bool(sel) and namespace_of(svc.props) == namespace_of(w.props) and \
        all(_pod_labels(w).get(k) == str(v) for k, v in sel.items())


def _monitor_namespaces_ok(m: StackResource, ns: str) -> bool:
    nsel = mapping(get(m.props, "spec.namespaceSelector"))
    if nsel.get("any") is True:
        return True
    names = [str(n) for n in items(nsel.get("matchNames"))]
    return ns in names if names else namespace_of(m.props) == ns


def _edge_annotated_for_scraping(w: StackResource) -> bool:
    """An edge-tier workload whose pod template declares its metrics endpoint (``prometheus.io/scrape``,
    ``port``, ``path``): an edge fleet runs on its own cluster (k3s / Arc), never scraped by this stack's
    Prometheus, so the declaration is what the plan can check."""
    pod = pod_spec(w.type, w.props)
    if pod is None or _pod_labels(w).get("slm.io/tier") != "edge":
        return False
    notes = pod.annotations
    return notes.get("prometheus.io/scrape") == "true" and bool(notes.get("prometheus.io/port")) and \
        str(notes.get("prometheus.io/path", "")).startswith("/")


def inference_scraped(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """OPS-03: every inference workload is scraped; GPU clusters run a DCGM exporter."""
    monitors = [r for r in resources if r.type in SERVICE_MONITORS | POD_MONITORS]
    services = of_type(resources, SERVICE)
    out = []
    for w in workloads_of(resources):
        if not is_inference(w.type, w.props):
            continue
        pod = pod_spec(w.type, w.props)
        assert pod is not None  # noqa: S101 (workload types carry a pod spec)
        main = pod.containers(include_init=False)
        if any("ollama" in c.image.lower() for c in main):
            # Ollama has no /metrics (seed defect D4, ollama#3144): scraped through the gateway instead. Its
            # pod also runs the API-key gate (nginx), which serves no metrics either.
            continue
        ns, labels = namespace_of(w.props), _pod_labels(w)
        if _edge_annotated_for_scraping(w):
            continue  # an edge fleet's own cluster scrapes it by annotation; its agent is outside this plan
        scraped = any(m.type in POD_MONITORS and _monitor_namespaces_ok(m, ns)
                      and selector_matches(get(m.props, "spec.selector", {}), labels) for m in monitors)
        for svc in (s for s in services if _service_selects(s, w)):
            scraped = scraped or any(m.type in SERVICE_MONITORS and _monitor_namespaces_ok(m, ns) and
                                     selector_matches(get(m.props, "spec.selector", {}), metadata_labels(svc.props))
                                     for m in monitors)
        if not scraped:
            out.append(Finding(f"metrics: found no ServiceMonitor or PodMonitor scraping {w.name!r}; add one so the "
                               "vllm:* metrics and SLO alerts exist.", w))
    gpu = any(is_gpu_size(p.get("vmSize")) for r in resources for _, p in pools(r.type, r.props)) or any(
        (pod := pod_spec(w.type, w.props)) is not None and pod.uses_gpu for w in workloads_of(resources))
    dcgm = any("dcgm" in c.image.lower() for w in workloads_of(resources)
               if (spec := pod_spec(w.type, w.props)) is not None for c in spec.containers()) or any(
        r.type.startswith("kubernetes:helm.sh/") and any(k in str(get(r.props, "chart")).lower()
                                                         for k in ("dcgm", "gpu-operator")) for r in resources)
    if gpu and cfg.get("requireDcgm", True) and not dcgm:
        out.append(Finding("dcgm-exporter: found GPU nodes but no DCGM exporter; deploy dcgm-exporter (or the GPU "
                           "Operator) so GPU memory, temperature and XID errors are monitored.", None))
    return out


def disruption_budgets(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """K8S-14: replicated Deployments/StatefulSets have a PodDisruptionBudget that allows disruption."""
    pdbs = of_type(resources, PDB)
    out = []
    for w in (r for r in workloads_of(resources) if r.type in ("kubernetes:apps/v1:Deployment",
                                                             "kubernetes:apps/v1:StatefulSet")):
        replicas = number(get(w.props, "spec.replicas"))
        ns = namespace_of(w.props)
        mine = [p for p in pdbs if namespace_of(p.props) == ns and mapping(get(p.props, "spec.selector"))
                and selector_matches(get(p.props, "spec.selector"), _pod_labels(w))]
        if not mine:
            if replicas is None or replicas >= 2 or is_inference(w.type, w.props):
                out.append(Finding(f"podDisruptionBudget: found none selecting {w.name!r}; add one with "
                                   "maxUnavailable: 1.", w))
            continue
        for p in mine:
            max_unavailable = get(p.props, "spec.maxUnavailable")
            min_available = number(get(p.props, "spec.minAvailable"))
            if number(max_unavailable) == 0 or str(max_unavailable) == "0%" or (
                    min_available is not None and replicas is not None and min_available >= replicas):
                out.append(Finding(f"spec: found a PodDisruptionBudget on {w.name!r} that allows no voluntary "
                                   "disruption; node upgrades would hang. Use maxUnavailable: 1.", p))
    return out


def _find_target(resources: Sequence[StackResource], scaler: StackResource) -> StackResource | None:
    ref = mapping(get(scaler.props, "spec.scaleTargetRef"))
    kind = str(ref.get("kind") or "Deployment")
    for r in workloads_of(resources):
        if r.type.rsplit(":", 1)[-1] == kind and str(get(r.props, "metadata.name")) == str(ref.get("name")) and \
                namespace_of(r.props) == namespace_of(scaler.props):
            return r
    return None


def autoscaler_bounds(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """GPU-05: autoscalers target an existing workload, keep a floor and cap GPU replicas."""
    minimum = number(cfg.get("minReplicas", 1)) or 0
    max_gpu = number(cfg.get("maxGpuReplicas", 4)) or 0
    out = []
    for s in (r for r in resources if r.type in (HPA, SCALED_OBJECT)):
        keda = s.type == SCALED_OBJECT
        lo = number(get(s.props, "spec.minReplicaCount" if keda else "spec.minReplicas"))
        hi = number(get(s.props, "spec.maxReplicaCount" if keda else "spec.maxReplicas"))
        lo = (0.0 if keda else 1.0) if lo is None else lo
        target = _find_target(resources, s)
        if target is None:
            out.append(Finding(f"spec.scaleTargetRef: found {show(get(s.props, 'spec.scaleTargetRef.name'))}, which "
                               "is not a workload of this stack in the same namespace; fix the name or kind.", s))
            continue
        if lo < minimum:
            key = "minReplicaCount" if keda else "minReplicas"
            out.append(Finding(f"spec.{key}: found {show(lo)}; keep at least {show(minimum)} replicas here.", s))
        pod = pod_spec(target.type, target.props)
        if pod is not None and pod.uses_gpu and hi is not None and hi > max_gpu:
            key = "maxReplicaCount" if keda else "maxReplicas"
            out.append(Finding(f"spec.{key}: found {show(hi)} for GPU workload {target.name!r}; at most "
                               f"{show(max_gpu)} here.", s))
    return out


def _budget_of(cfg: Mapping[str, Any], stack_budget: float | None) -> float | None:
    """The smaller of the policy's ``monthlyBudgetUsd`` and the stack's own ``budget_usd_per_month``."""
    budgets = [b for b in (number(cfg.get("monthlyBudgetUsd")), stack_budget) if b is not None]
    return min(budgets) if budgets else None


def monthly_budget(resources: Sequence[StackResource], cfg: Mapping[str, Any],
                   stack_budget: float | None = None) -> list[Finding]:
    """GPU-07: the monthly upper bound stays within the budget (the smaller of config and stack), and every
    compute resource is priced: one "cannot price" finding per resource the price table does not cover.

    The sum is a finding of the stack, never of one resource: attached to the most expensive one, an exact-name
    exemption of that resource (which staging and prod allow) silenced the whole budget. A "cannot price"
    finding stays on its resource, and exempting it keeps only that resource out of the sum.
    """
    lines = cost.estimate([(r.type, r.name, r.props) for r in resources])
    by_name = {r.name: r for r in resources}
    out = [Finding(cost.unpriced_message(line), by_name.get(line.resource.split("/")[0]))
           for line in lines if line.unpriced is not None]
    budget = _budget_of(cfg, stack_budget)
    message = cost.budget_violation(lines, budget) if budget is not None else None
    if message is not None:
        out.insert(0, Finding(message))
    return out


def budget_headroom(resources: Sequence[StackResource], cfg: Mapping[str, Any],
                    stack_budget: float | None = None) -> list[Finding]:
    """GPU-07 (advisory): the estimate has reached ``warnAtPercent`` % of the budget (a stack finding, as the budget)."""
    budget = _budget_of(cfg, stack_budget)
    if budget is None:
        return []
    lines = cost.estimate([(r.type, r.name, r.props) for r in resources])
    message = cost.budget_warning(lines, budget, number(cfg.get("warnAtPercent")) or 80.0)
    return [Finding(message)] if message is not None else []


def gpu_pools_of(resources: Sequence[StackResource]) -> list[StackResource]:
    """AgentPools with GPU sizes (used by reports)."""
    return [r for r in resources if r.type == AGENT_POOL and is_gpu_size(get(r.props, "vmSize"))]
