"""Reading the whole plan as a system: who refers to whom, who waits for whom, clusters, their node
pools and the pods that land on them.

Shared by the stack invariants (``scheduling``, ``existence``, ``identity``, ``reachability``,
``conflicts``). Pure: it reads ``StackResource`` values only.

**References and ordering.** A reference is seen two ways, both as the engine sends them to
``AnalyzeStack``: through the property dependencies of an input (an Output of resource B flowed into
input ``p`` of A, the only signal at ``pulumi preview`` where new ids are still unknown), or through an
ARM id string that ends in the target's physical name. Ordering is the transitive closure of
``dependencies`` (which holds ``depends_on`` and every property dependency), i.e. what the engine waits
for before creating.

**Clusters, pools and pods.** What AKS adds by itself is modelled here once, with its
source, so every rule sees the same nodes:

- every node carries ``kubernetes.azure.com/agentpool=<pool>``, ``agentpool=<pool>``,
  ``kubernetes.azure.com/mode=<system|user>``, ``kubernetes.io/os=linux`` and
  ``node.kubernetes.io/instance-type=<vm size>`` (AKS "Use labels" page);
- Spot pools carry the label ``kubernetes.azure.com/scalesetpriority=spot`` **and the taint
  ``kubernetes.azure.com/scalesetpriority=spot:NoSchedule``** (AKS "Add a Spot node pool" page);
- GPU nodes get the NFD/GFD labels (``nvidia.com/gpu.present=true``) only when the NVIDIA GPU
  Operator runs (it deploys node-feature-discovery); AKS-managed drivers add none.

A Kubernetes resource belongs to the cluster its provider was created from (the provider's
dependencies); with no such provider and exactly one cluster in the plan, to that cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from policies.rules.catalog import VM_SKUS, VmSku
from policies.rules.stack import StackResource, by_urn, created_here, of_type, urn_type
from policies.rules.tokens import (
    AGENT_POOL,
    CLUSTER,
    HELM_RELEASE_TYPES,
    HPA,
    IDENTITY,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    SCALED_OBJECT,
)
from policies.rules.wire import GPU_RESOURCE, Unknown, get, items, mapping, number, pod_spec

SPOT_TAINT_KEY: Final = "kubernetes.azure.com/scalesetpriority"
SPOT_TAINT: Final = f"{SPOT_TAINT_KEY}=spot:NoSchedule"
POOL_LABEL: Final = "kubernetes.azure.com/agentpool"
GPU_PRESENT_LABEL: Final = "nvidia.com/gpu.present"
DEFAULT_MAX_PODS: Final = {"overlay": 250, "azure": 30, "kubenet": 110, "none": 250}
"""AKS default maxPods per node by network plugin (Azure CNI Overlay: 250)."""
EVICTION_MIB: Final = 100
"""AKS 1.29+: the kubelet keeps ``memory.available < 100Mi`` free (node-resource-reservations)."""
KUBE_RESERVED_CPU_M: Final = ((1, 60), (2, 100), (4, 140), (8, 180), (16, 260), (32, 420), (64, 740))
"""AKS kube-reserved CPU (millicores) by host cores (Learn: node resource reservations)."""


# --------------------------------------------------------------------------- references and ordering

UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's sentinel for a value not known at preview."""

ROLE_IDS: Final[Mapping[str, str]] = {
    # Azure built-in role definition ids, the same in every tenant
    # (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "IoT Hub Data Contributor": "4fc6c259-987e-4a07-842e-c321cc9d413f",
    "Grafana Admin": "22926164-76b3-42b3-bc55-97df8dab3e41",
    "Grafana Editor": "a79a5197-3a5c-4973-a920-486035ffd60f",
    "Grafana Viewer": "60921a7e-fef1-4a43-9b16-a26c52ad4769",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
}
"""The roles the invariants reason about, by name."""

DEPLOYER_MARK: Final = "deployer:"
"""Role assignments whose ``description`` starts with this grant the identity that runs ``pulumi up``
(``authorization.getClientConfig().objectId``): its object id is only known to the engine, so the plan
names it through the description Azure also shows next to the assignment."""


def known(value: object) -> str | None:
    """A string input that is known at preview (not unset, not the unknown sentinel)."""
    return value if isinstance(value, str) and value and UNKNOWN not in value else None


def deps_of(r: StackResource, prop: str) -> tuple[str, ...]:
    """URNs whose outputs flowed into input ``prop`` of ``r``."""
    return tuple(r.property_dependencies.get(prop, ()))


def ancestors(r: StackResource, index: Mapping[str, StackResource]) -> set[str]:
    """Every URN ``r`` waits for before it is created (transitive ``dependencies``)."""
    seen: set[str] = set()
    todo = list(r.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        dep = index.get(urn)
        if dep is not None:
            todo.extend(dep.dependencies)
    return seen


def clusters_running(r: StackResource, clusters: Sequence[StackResource],
                     index: Mapping[str, StackResource]) -> list[StackResource]:
    """The clusters a Kubernetes object is applied to: those its provider waits for (kubeconfig from them).

    Transitive, with no fallback (the identity and reachability invariants); ``cluster_of`` is the
    scheduling view: the provider's direct references, else the plan's only cluster.
    """
    provider = index.get(r.provider or "")
    if provider is None:
        return []
    before = ancestors(provider, index)
    return [c for c in clusters if c.urn in before]


def physical_name(r: StackResource) -> str:
    """The Azure name of ``r``: its ``<kind>Name`` input (or resourceName / name), else its logical name."""
    kind = r.type.rsplit(":", 1)[-1]
    lower = kind[0].lower() + kind[1:]
    for key in (f"{lower}Name", "resourceName", "accountName", "vaultName", "registryName", "workspaceName", "name"):
        value = known(get(r.props, key))
        if value:
            return value
    return r.name


def refers_to(ref: StackResource, prop: str, target: StackResource, value: object = None) -> bool:
    """``ref.prop`` (or ``value`` taken from it) points at ``target``: a property dependency or its ARM id."""
    if target.urn in deps_of(ref, prop):
        return True
    raw = value if value is not None else (dict.get(ref.props, prop) if isinstance(ref.props, dict) else None)
    if created_here(ref, prop, raw):  # an id of another resource this stack creates (a first preview)
        return False
    if isinstance(raw, Unknown):  # an unknown from outside the stack: read, so it cannot be verified
        raw.touch()
    text = known(value if value is not None else get(ref.props, prop))
    return bool(text) and text.rstrip("/").lower().endswith("/" + physical_name(target).lower())  # type: ignore[union-attr]


def role_name(ra: StackResource) -> str | None:
    """The built-in role a RoleAssignment grants, by name (None for other roles)."""
    rid = str(get(ra.props, "roleDefinitionId") or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return next((name for name, guid in ROLE_IDS.items() if guid == rid), None)


def role_assignments(resources: Iterable[StackResource]) -> list[StackResource]:
    """Every RoleAssignment of the plan."""
    return [r for r in resources if r.type == ROLE_ASSIGNMENT]


def grants(ra: StackResource, roles: Iterable[str]) -> bool:
    """``ra`` grants one of ``roles``."""
    return role_name(ra) in set(roles)


def scope_covers(ra: StackResource, target: StackResource) -> bool:
    """``ra.scope`` is ``target``, or its resource group, or its subscription."""
    if refers_to(ra, "scope", target):
        return True
    if created_here(ra, "scope"):  # the id of a resource group this stack creates, holding target, covers it
        groups = {u for u in deps_of(ra, "scope") if urn_type(u) == RESOURCE_GROUP}
        return bool(groups & set(deps_of(target, "resourceGroupName")))
    scope = known(get(ra.props, "scope"))
    if scope is None:
        return False
    scope = scope.rstrip("/").lower()
    if not scope.startswith("/subscriptions/"):
        return False
    if scope.count("/") == 2:
        return True
    rg = known(get(target.props, "resourceGroupName"))
    return rg is not None and scope.count("/") == 4 and scope.endswith(f"/resourcegroups/{rg.lower()}")


def principal_is(ra: StackResource, principal: StackResource | str) -> bool:
    """``ra`` is granted to ``principal``: an identity resource (by property dependency) or a known id."""
    if isinstance(principal, str):
        return known(get(ra.props, "principalId")) == principal
    return principal.urn in deps_of(ra, "principalId")


def is_deployer_grant(ra: StackResource) -> bool:
    """``ra`` grants the identity that runs ``pulumi up`` (see ``DEPLOYER_MARK``)."""
    return str(get(ra.props, "description") or "").startswith(DEPLOYER_MARK)


def identities_in(r: StackResource, prop: str, index: Mapping[str, StackResource]) -> list[StackResource]:
    """The user-assigned identities whose outputs flowed into ``r.prop``."""
    return [index[u] for u in deps_of(r, prop) if u in index and index[u].type == IDENTITY]


def find_grant(ras: Iterable[StackResource], *, roles: Iterable[str], target: StackResource,
               principal: StackResource | str | None = None, deployer: bool = False) -> StackResource | None:
    """The first assignment of one of ``roles`` on ``target`` to ``principal`` (or to the deployer)."""
    wanted = tuple(roles)
    for ra in ras:
        if not grants(ra, wanted) or not scope_covers(ra, target):
            continue
        if deployer and is_deployer_grant(ra):
            return ra
        if principal is not None and principal_is(ra, principal):
            return ra
    return None


def listed(value: object) -> list[dict[str, object]]:
    """``value`` as a list of mappings (wire lists of objects)."""
    return [mapping(v) for v in items(value)]


# --------------------------------------------------------------------------- taints and tolerations


@dataclass(frozen=True)
class Taint:
    """A node taint ``key[=value]:Effect``."""

    key: str
    value: str
    effect: str

    @classmethod
    def parse(cls, text: str) -> Taint:
        """``key=value:Effect`` (or ``key:Effect``)."""
        head, _, effect = text.partition(":")
        key, _, value = head.partition("=")
        return cls(key.strip(), value.strip(), effect.strip() or "NoSchedule")

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"

    @property
    def repels(self) -> bool:
        """NoSchedule and NoExecute keep untolerating pods off; PreferNoSchedule only discourages."""
        return self.effect in ("NoSchedule", "NoExecute")

    def toleration(self) -> str:
        """The toleration that admits this taint, as a one-line YAML flow map for messages."""
        if self.value:
            return (f"{{key: {self.key}, operator: Equal, value: {self.value}, effect: {self.effect}}}")
        return f"{{key: {self.key}, operator: Exists, effect: {self.effect}}}"


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Taint) -> bool:
    """Kubernetes semantics: empty key + Exists tolerates all; empty effect matches every effect."""
    for t in tolerations:
        key, op = str(t.get("key") or ""), str(t.get("operator") or "Equal")
        effect = str(t.get("effect") or "")
        if effect and effect != taint.effect:
            continue
        if not key and op == "Exists":
            return True
        if key != taint.key:
            continue
        if op == "Exists" or str(t.get("value") or "") == taint.value:
            return True
    return False


# --------------------------------------------------------------------------- node selection


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key")), str(expr.get("operator"))
    values = [str(v) for v in items(expr.get("values"))]
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            return (int(labels[key]) > int(values[0])) if op == "Gt" else (int(labels[key]) < int(values[0]))
        except ValueError:
            return False
    return False


@dataclass(frozen=True)
class Placement:
    """Where a pod may go: its nodeSelector, required node affinity terms and tolerations."""

    node_selector: Mapping[str, str] = field(default_factory=dict[str, str])
    affinity_terms: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    """ORed ``nodeSelectorTerms``, each an ANDed tuple of ``matchExpressions``."""
    tolerations: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Placement:
        """From a pod spec (or chart values with the same keys)."""
        terms = items(get(spec, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                                "nodeSelectorTerms"))
        return cls(
            node_selector={str(k): str(v) for k, v in mapping(spec.get("nodeSelector")).items()},
            affinity_terms=tuple(tuple(mapping(e) for e in items(mapping(t).get("matchExpressions")))
                                 for t in terms),
            tolerations=tuple(mapping(t) for t in items(spec.get("tolerations"))),
        )

    def selects(self, labels: Mapping[str, str]) -> bool:
        """The node labels satisfy the nodeSelector and one of the required affinity terms."""
        if any(labels.get(k) != v for k, v in self.node_selector.items()):
            return False
        return not self.affinity_terms or any(all(_expression_matches(e, labels) for e in term)
                                              for term in self.affinity_terms)

    def untolerated(self, taints: Sequence[Taint]) -> list[Taint]:
        """The repelling taints among ``taints`` this pod does not tolerate."""
        return [t for t in taints if t.repels and not tolerates(self.tolerations, t)]

    def describe(self) -> str:
        """A short rendering of the selector for messages."""
        parts = [f"{k}={v}" for k, v in sorted(self.node_selector.items())]
        parts += [" or ".join(" and ".join(f"{e.get('key')} {e.get('operator')} {list(items(e.get('values')))}"
                                            for e in term) for term in self.affinity_terms)] \
            if self.affinity_terms else []
        return ", ".join(parts) or "no node selector"


# --------------------------------------------------------------------------- pools


@dataclass(frozen=True, eq=False)
class Pool:
    """One node pool as the scheduler will see its nodes."""

    name: str
    resource: StackResource
    """The AgentPool, or the ManagedCluster for an inline ``agentPoolProfiles`` entry."""
    cluster: StackResource | None
    vm_size: str
    sku: VmSku | None
    max_nodes: int
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    spot: bool
    max_pods: int

    @property
    def display(self) -> str:
        """``'gput4' (serving-gput4)`` for messages."""
        return f"pool {self.name!r} ({self.resource.name})"

    @property
    def gpus_per_node(self) -> int:
        """GPUs per node from the VM catalogue (0 for CPU sizes and unknown sizes)."""
        return self.sku.gpu_count if self.sku is not None else 0

    @property
    def is_gpu(self) -> bool:
        """N-series (or a catalogue size with GPUs)."""
        return self.gpus_per_node > 0 or self.vm_size.startswith("Standard_N")

    def allocatable(self) -> tuple[float, float] | None:
        """(CPU millicores, memory MiB) a node offers pods, per AKS's reservations; None if unknown."""
        if self.sku is None:
            return None
        return node_allocatable(self.sku, self.max_pods)


def node_allocatable(sku: VmSku, max_pods: int) -> tuple[float, float]:
    """AKS 1.29+: CPU minus kube-reserved; memory minus min(20 MiB x maxPods + 50, 25 %) minus 100 Mi."""
    reserved_cpu = next((m for cores, m in KUBE_RESERVED_CPU_M if sku.vcpus <= cores), KUBE_RESERVED_CPU_M[-1][1])
    memory = sku.memory_gib * 1024.0
    reserved_memory = min(20.0 * max_pods + 50.0, 0.25 * memory)
    return sku.vcpus * 1000.0 - reserved_cpu, memory - reserved_memory - EVICTION_MIB


def clusters(resources: Sequence[StackResource]) -> list[StackResource]:
    """Every ManagedCluster of the plan."""
    return of_type(resources, CLUSTER)


def _cluster_of_pool(pool: StackResource, cluster_list: Sequence[StackResource]) -> StackResource | None:
    deps = set(pool.property_dependencies.get("resourceName", ())) | set(pool.dependencies)
    for c in cluster_list:
        if c.urn in deps or str(get(pool.props, "resourceName")) in (str(get(c.props, "resourceName")), c.name):
            return c
    return cluster_list[0] if len(cluster_list) == 1 else None


def _pool(resource: StackResource, props: Mapping[str, Any], cluster: StackResource | None,
          gpu_operator: bool) -> Pool:
    name = str(props.get("name") or props.get("agentPoolName") or resource.name)
    vm_size = str(props.get("vmSize") or "")
    sku = VM_SKUS.get(vm_size)
    spot = str(props.get("scaleSetPriority") or "Regular") == "Spot"
    mode = str(props.get("mode") or "User")
    labels = {str(k): str(v) for k, v in mapping(props.get("nodeLabels")).items()}
    labels |= {POOL_LABEL: name, "agentpool": name, "kubernetes.azure.com/mode": mode.lower(),
               "kubernetes.io/os": str(props.get("osType") or "Linux").lower(),
               "node.kubernetes.io/instance-type": vm_size}
    taints = [Taint.parse(str(t)) for t in items(props.get("nodeTaints"))]
    if spot:
        labels[SPOT_TAINT_KEY] = "spot"
        if all(t.key != SPOT_TAINT_KEY for t in taints):
            taints.append(Taint.parse(SPOT_TAINT))
    gpu = (sku is not None and sku.is_gpu) or vm_size.startswith("Standard_N")
    if gpu and gpu_operator:
        labels[GPU_PRESENT_LABEL] = "true"
        labels["feature.node.kubernetes.io/pci-10de.present"] = "true"
    plugin = str(get(cluster.props, "networkProfile.networkPluginMode") or get(
        cluster.props, "networkProfile.networkPlugin") or "overlay") if cluster is not None else "overlay"
    max_pods = int(number(props.get("maxPods")) or DEFAULT_MAX_PODS.get(plugin, 250))
    autoscale = props.get("enableAutoScaling") is True
    nodes = number(props.get("maxCount")) if autoscale else number(props.get("count"))
    return Pool(name=name, resource=resource, cluster=cluster, vm_size=vm_size, sku=sku,
                max_nodes=int(nodes if nodes is not None else number(props.get("count")) or 0), labels=labels,
                taints=tuple(taints), spot=spot, max_pods=max_pods)


def pools(resources: Sequence[StackResource]) -> list[Pool]:
    """Every node pool of every cluster: inline ``agentPoolProfiles`` and AgentPool resources."""
    cluster_list = clusters(resources)
    operator_clusters = {c.urn for c in cluster_list for r in resources
                         if r.type in HELM_RELEASE_TYPES and "gpu-operator" in str(get(r.props, "chart"))
                         and cluster_of(r, resources) is c}
    out: list[Pool] = []
    for c in cluster_list:
        for p in items(get(c.props, "agentPoolProfiles")):
            out.append(_pool(c, mapping(p), c, c.urn in operator_clusters))
    for r in resources:
        if r.type == AGENT_POOL:
            c = _cluster_of_pool(r, cluster_list)
            out.append(_pool(r, r.props, c, c is not None and c.urn in operator_clusters))
    return out


def cluster_of(resource: StackResource, resources: Sequence[StackResource]) -> StackResource | None:
    """The cluster a Kubernetes resource is applied to (through its provider), if the plan says."""
    cluster_list = clusters(resources)
    index = by_urn(resources)
    provider = (index.get(resource.provider) or index.get(resource.provider.rsplit("::", 1)[0])
                if resource.provider else None)
    if provider is not None and not provider.name.startswith("default"):
        # An explicit provider targets the cluster it was built from, or some cluster the plan does not hold.
        return next((c for c in cluster_list if c.urn in provider.dependencies
                     or any(c.urn in urns for urns in provider.property_dependencies.values())), None)
    return cluster_list[0] if len(cluster_list) == 1 else None


def pools_of(resource: StackResource, resources: Sequence[StackResource],
             all_pools: Sequence[Pool] | None = None) -> list[Pool] | None:
    """The pools a Kubernetes resource's pods may land on; None when its cluster is unknown."""
    cluster = cluster_of(resource, resources)
    if cluster is None:
        return None
    return [p for p in (all_pools if all_pools is not None else pools(resources)) if p.cluster is cluster]


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class Requests:
    """Per-pod requests the scheduler reserves (containers summed; init containers at their max)."""

    gpus: float = 0.0
    cpu_m: float = 0.0
    memory_mib: float = 0.0


def cpu_millicores(value: Any) -> float:
    """A Kubernetes CPU quantity (``500m``, ``2``, ``2.5``) in millicores; 0 when absent."""
    text = str(value or "0").strip()
    if text.endswith("m"):
        return number(text[:-1]) or 0.0
    return (number(text) or 0.0) * 1000.0


_MEMORY_UNITS: Final = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "Ti": 1024.0 ** 2, "K": 1e3 / 2 ** 20,
                        "M": 1e6 / 2 ** 20, "G": 1e9 / 2 ** 20, "T": 1e12 / 2 ** 20, "": 1 / 2 ** 20}


def memory_mib(value: Any) -> float:
    """A Kubernetes memory quantity (``8Gi``, ``512Mi``, ``1G``, bytes) in MiB; 0 when absent."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?|)\s*", str(value or "0"))
    if m is None:
        return 0.0
    return float(m.group(1)) * _MEMORY_UNITS[m.group(2)]


def pod_requests(spec: Mapping[str, Any]) -> Requests:
    """What one pod of ``spec`` reserves: requests (limits where requests are unset, as the API does)."""
    def of(container: Mapping[str, Any]) -> Requests:
        req = {**mapping(get(container, "resources.limits")), **mapping(get(container, "resources.requests"))}
        return Requests(number(req.get(GPU_RESOURCE)) or 0.0, cpu_millicores(req.get("cpu")),
                        memory_mib(req.get("memory")))
    main = [of(mapping(c)) for c in items(spec.get("containers"))]
    init = [of(mapping(c)) for c in items(spec.get("initContainers"))]
    total = Requests(sum(r.gpus for r in main), sum(r.cpu_m for r in main), sum(r.memory_mib for r in main))
    return Requests(max([total.gpus, *(r.gpus for r in init)]), max([total.cpu_m, *(r.cpu_m for r in init)]),
                    max([total.memory_mib, *(r.memory_mib for r in init)]))


@dataclass(frozen=True)
class PodGroup:
    """The pods of one workload (or of one DaemonSet a Helm release renders from our values)."""

    resource: StackResource
    kind: str
    """``Deployment``, ``StatefulSet``, ``DaemonSet``, ``Job``... (for Helm: the rendered kind)."""
    label: str
    """How messages name it: the resource name, plus the chart component for Helm releases."""
    placement: Placement
    requests: Requests
    source: str
    """The property path the placement comes from (``spec.template.spec`` or ``values....``)."""
    gpu_agent: bool = False
    """An NVIDIA node agent (device plugin, DCGM exporter, GPU operator operand)."""
    images: tuple[str, ...] = ()
    """Container images (typed workloads; empty for Helm-rendered pods)."""


@dataclass(frozen=True)
class ChartPods:
    """Where a chart reads the placement of one of its DaemonSets from, and its defaults."""

    component: str
    path: str
    """Dotted values path holding ``nodeSelector`` / ``affinity`` / ``tolerations`` ('' = top level)."""
    default: Mapping[str, Any]
    """The chart's own defaults for those keys (used when our values leave them out)."""
    gpu_agent: bool = True


_NFD_GPU_AFFINITY: Final = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "feature.node.kubernetes.io/pci-10de.present", "operator": "In",
                               "values": ["true"]}]},
        {"matchExpressions": [{"key": "feature.node.kubernetes.io/cpu-model.vendor_id", "operator": "In",
                               "values": ["NVIDIA"]}]},
        {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]}]}}}
CHART_PODS: Final[dict[str, tuple[ChartPods, ...]]] = {
    # Chart defaults as read from each chart's values.yaml at the pinned tag.
    # k8s-device-plugin v0.17.1 deployments/helm/nvidia-device-plugin/values.yaml: affinity on NFD/GFD
    # labels only, tolerations for CriticalAddonsOnly and nvidia.com/gpu.
    "nvidia-device-plugin": (ChartPods("device-plugin", "", {
        "affinity": _NFD_GPU_AFFINITY,
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}),),
    # dcgm-exporter 4.4.2-4.7.1 deployment/values.yaml: no selector, tolerates only the control plane.
    "dcgm-exporter": (ChartPods("dcgm-exporter", "", {
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}]}),),
    # gpu-operator v25.3.0 deployments/gpu-operator/values.yaml: operands are DaemonSets on
    # nvidia.com/gpu.present nodes (labelled by its NFD) with daemonsets.tolerations.
    "gpu-operator": (ChartPods("operands", "daemonsets", {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}),),
}
"""Charts whose DaemonSets we place through values, keyed by chart name."""


def chart_name(release: StackResource) -> str:
    """The chart of a Helm release (``repo/chart`` and OCI references reduced to the name)."""
    return str(get(release.props, "chart") or "").rstrip("/").rsplit("/", 1)[-1]


def _chart_groups(release: StackResource) -> list[PodGroup]:
    out: list[PodGroup] = []
    for chart in CHART_PODS.get(chart_name(release), ()):
        values = mapping(get(release.props, "values"))
        node = mapping(get(values, chart.path)) if chart.path else values
        merged = {k: (node[k] if k in node else chart.default.get(k))
                  for k in ("nodeSelector", "affinity", "tolerations")}
        merged = {k: v for k, v in merged.items() if v is not None}
        source = f"values.{chart.path + '.' if chart.path else ''}tolerations"
        out.append(PodGroup(release, "DaemonSet", f"{release.name} ({chart.component})", Placement.of(merged),
                            Requests(), source, gpu_agent=chart.gpu_agent))
    return out


def is_gpu_agent_image(image: str) -> bool:
    """Images of NVIDIA node agents (device plugin, DCGM exporter, GPU operator operands)."""
    low = image.lower()
    return any(k in low for k in ("k8s-device-plugin", "dcgm-exporter", "gpu-operator", "nvidia/driver",
                                  "container-toolkit"))


def pod_groups(resources: Sequence[StackResource]) -> list[PodGroup]:
    """Typed workloads and the DaemonSets of the Helm releases listed in ``CHART_PODS``."""
    out: list[PodGroup] = []
    for r in resources:
        pod = pod_spec(r.type, r.props)
        if pod is not None:
            kind = r.type.rsplit(":", 1)[-1]
            agent = kind == "DaemonSet" and any(is_gpu_agent_image(c.image) for c in pod.containers())
            out.append(PodGroup(r, kind, r.name, Placement.of(pod.spec), pod_requests(pod.spec), pod.path,
                                gpu_agent=agent, images=tuple(c.image for c in pod.containers())))
        elif r.type in HELM_RELEASE_TYPES:
            out.extend(_chart_groups(r))
    return out


# --------------------------------------------------------------------------- replicas and rollouts


def _count(value: Any, base: int, *, round_up: bool) -> int:
    """An int-or-percent (``1``, ``"25%"``) against ``base`` replicas, rounded as Kubernetes does."""
    text = str(value).strip()
    if text.endswith("%"):
        share = (number(text[:-1]) or 0.0) * base / 100.0
        return math.ceil(share) if round_up else math.floor(share)
    return int(number(value) or 0)


def autoscaler_of(workload: StackResource, resources: Sequence[StackResource]) -> StackResource | None:
    """The KEDA ScaledObject or HPA targeting ``workload`` (same namespace, kind and name)."""
    kind = workload.type.rsplit(":", 1)[-1]
    name, ns = str(get(workload.props, "metadata.name")), str(get(workload.props, "metadata.namespace") or "default")
    for s in resources:
        if s.type in (SCALED_OBJECT, HPA):
            ref = mapping(get(s.props, "spec.scaleTargetRef"))
            if str(ref.get("kind") or "Deployment") == kind and str(ref.get("name")) == name and \
                    str(get(s.props, "metadata.namespace") or "default") == ns:
                return s
    return None


def max_replicas(workload: StackResource, resources: Sequence[StackResource]) -> tuple[int, str]:
    """The most replicas a workload may run, and where that number comes from."""
    scaler = autoscaler_of(workload, resources)
    if scaler is not None:
        key = "spec.maxReplicaCount" if scaler.type == SCALED_OBJECT else "spec.maxReplicas"
        default = 100 if scaler.type == SCALED_OBJECT else 1
        value = number(get(scaler.props, key))
        return int(value if value is not None else default), f"{scaler.name} {key.rsplit('.', maxsplit=1)[-1]}"
    replicas = number(get(workload.props, "spec.replicas"))
    return int(replicas if replicas is not None else 1), "spec.replicas"


def rollout_surge(workload: StackResource, replicas: int) -> int:
    """Extra pods a rolling update creates: Deployments' maxSurge (default 25 %, rounded up); else 0."""
    if workload.type != "kubernetes:apps/v1:Deployment":
        return 0
    strategy = mapping(get(workload.props, "spec.strategy"))
    if str(strategy.get("type") or "RollingUpdate") == "Recreate":
        return 0
    surge = get(strategy, "rollingUpdate.maxSurge")
    return _count("25%" if surge is None else surge, max(replicas, 1), round_up=True)
