"""Stack invariants: every pod has a pool that takes it, GPU node agents reach every GPU node, and
what may run on a pool (max replicas plus the rollout surge) fits the pool at its max node count.

None of these is visible resource by resource: a Deployment, a Helm release and an AgentPool can each
be valid while the pod never schedules (an AKS-added Spot taint nobody tolerates) or a rollout never
finishes (the surge pod needs a GPU that does not exist). Each finding names both ends and the fix.
Pools and placements come from ``plan_graph`` (which models what AKS adds to nodes itself).
"""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from policies.rules.plan_graph import (
    PodGroup,
    Pool,
    Requests,
    chart_name,
    max_replicas,
    pod_groups,
    pools,
    pools_of,
    rollout_surge,
)
from policies.rules.stack import Finding, StackResource

ROLLOUT_FIX: Final = ("raise the pool's max_count, lower the deployments' max replicas, or roll with "
                      "maxSurge 0 / maxUnavailable 1")
DEVICE_PLUGIN_CHARTS: Final = frozenset({"nvidia-device-plugin", "gpu-operator"})


def _groups_with_pools(resources: Sequence[StackResource]) -> tuple[list[Pool], list[tuple[PodGroup, list[Pool]]]]:
    all_pools = pools(resources)
    out: list[tuple[PodGroup, list[Pool]]] = []
    for group in pod_groups(resources):
        candidates = pools_of(group.resource, resources, all_pools)
        if candidates:  # None: the cluster is unknown (local tier, another cluster); []: no pools at all
            out.append((group, candidates))
    return all_pools, out


def _advertises_gpus(group: PodGroup) -> bool:
    """The NVIDIA device plugin (its chart, the GPU Operator, or a typed plugin DaemonSet)."""
    if group.resource.type.startswith("kubernetes:helm.sh/"):
        return chart_name(group.resource) in DEVICE_PLUGIN_CHARTS
    return any("k8s-device-plugin" in image for image in group.images)


def _taint_list(pool: Pool, group: PodGroup) -> str:
    return ", ".join(f"'{t}'" for t in group.placement.untolerated(pool.taints))


def _spot_note(pool: Pool, group: PodGroup) -> str:
    return " (AKS adds it to every Spot pool)" if pool.spot and any(
        t.key == "kubernetes.azure.com/scalesetpriority" for t in group.placement.untolerated(pool.taints)) else ""


def _tolerations_fix(pool: Pool, group: PodGroup) -> str:
    return "; ".join(t.toleration() for t in group.placement.untolerated(pool.taints))


def pod_placement(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Every pod's selector matches a pool of its cluster, and it tolerates that pool's taints."""
    out: list[Finding] = []
    for group, cluster_pools in _groups_with_pools(resources)[1]:
        if group.gpu_agent:
            continue  # slm-gpu-node-agents holds node agents to every GPU pool
        selected = [p for p in cluster_pools if group.placement.selects(p.labels)]
        if not selected:
            names = ", ".join(f"{p.name!r}" for p in cluster_pools)
            out.append(Finding(
                f"{group.source}: {group.label} selects no node pool ({group.placement.describe()}); the cluster "
                f"{cluster_pools[0].cluster.name if cluster_pools[0].cluster else '?'} has {names}. Select a pool "
                "by kubernetes.azure.com/agentpool or a label the pool sets in nodeLabels.", group.resource))
            continue
        if any(not group.placement.untolerated(p.taints) for p in selected):
            continue
        for pool in selected:
            out.append(Finding(
                f"{group.source}: {group.label} selects only pools whose taints it does not tolerate: "
                f"{pool.display} has {_taint_list(pool, group)}{_spot_note(pool, group)}; add "
                f"{_tolerations_fix(pool, group)}.", group.resource))
    return out


def gpu_node_agents(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """NVIDIA node agents select and tolerate every GPU pool; GPU pools have a device plugin."""
    out: list[Finding] = []
    all_pools, groups = _groups_with_pools(resources)
    for pool in (p for p in all_pools if p.is_gpu):
        agents = [g for g, cluster_pools in groups if g.gpu_agent and pool in cluster_pools]
        for agent in agents:
            if not agent.placement.selects(pool.labels):
                out.append(Finding(
                    f"{agent.source.rsplit('.', 1)[0] or 'values'}: {agent.label} does not select GPU "
                    f"{pool.display} ({agent.placement.describe()}), so its nodes get no agent; select the label "
                    "the pool sets (nodeLabels accelerator: nvidia) or drop the NFD affinity.", agent.resource))
            elif agent.placement.untolerated(pool.taints):
                effect = ("nvidia.com/gpu is never advertised there and GPU pods stay Pending"
                          if _advertises_gpus(agent) else "that pool's GPUs go unmonitored")
                out.append(Finding(
                    f"{agent.source}: {agent.label} does not tolerate {_taint_list(pool, agent)} of GPU "
                    f"{pool.display}{_spot_note(pool, agent)}, so {effect}; add {_tolerations_fix(pool, agent)}.",
                    agent.resource))
        if not any(_advertises_gpus(a) for a in agents):
            out.append(Finding(
                f"nodeTaints: GPU {pool.display} has no NVIDIA device plugin in its cluster (neither the "
                "nvidia-device-plugin chart nor the GPU Operator), so nvidia.com/gpu is never allocatable; "
                "install one that tolerates the pool.", pool.resource))
    return out


# --------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class _Demand:
    group: PodGroup
    pods: int
    replicas: int
    surge: int
    origin: str

    def text(self, per_pod: float, unit: str) -> str:
        surge = f" + surge {self.surge}" if self.surge else ""
        return (f"{self.group.label} {_num(self.pods * per_pod)}{unit} (max {self.replicas} from {self.origin}{surge}"
                f" x {_num(per_pod)}{unit})")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _capacity(pools_: Sequence[Pool], overhead: Mapping[str, Requests]) -> tuple[float, float, float]:
    gpus = cpu = mem = 0.0
    for p in pools_:
        gpus += p.max_nodes * p.gpus_per_node
        alloc = p.allocatable()
        if alloc is not None:
            extra = overhead.get(p.resource.urn + p.name, Requests())
            cpu += p.max_nodes * max(0.0, alloc[0] - extra.cpu_m)
            mem += p.max_nodes * max(0.0, alloc[1] - extra.memory_mib)
    return gpus, cpu, mem


def _describe(pools_: Sequence[Pool]) -> str:
    return " + ".join(f"{p.display} {p.vm_size} x max {p.max_nodes}" for p in pools_)


def _fits_a_node(req: Requests, pool: Pool, overhead: Requests) -> bool:
    alloc = pool.allocatable()
    if req.gpus > pool.gpus_per_node:
        return False
    return alloc is None or (req.cpu_m <= alloc[0] - overhead.cpu_m and req.memory_mib <= alloc[1] - overhead.memory_mib)


def _daemonset_overhead(groups: Sequence[tuple[PodGroup, list[Pool]]]) -> dict[str, Requests]:
    """Per pool: what the typed DaemonSets that land there reserve on every node."""
    out: dict[str, Requests] = {}
    for group, cluster_pools in groups:
        if group.kind != "DaemonSet":
            continue
        for p in cluster_pools:
            if group.placement.selects(p.labels) and not group.placement.untolerated(p.taints):
                cur = out.get(p.resource.urn + p.name, Requests())
                out[p.resource.urn + p.name] = Requests(cur.gpus + group.requests.gpus, cur.cpu_m + group.requests.cpu_m,
                                                        cur.memory_mib + group.requests.memory_mib)
    return out


def pool_capacity(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Σ (max replicas + rollout surge) x requests of the workloads a pool takes fits it at max_count.

    GPUs are whole and per pod, so their sum is exact; CPU and memory are compared as totals against
    AKS's allocatable (a necessary condition: bin-packing across nodes is not simulated), and every
    pod must fit one node.
    """
    _, groups = _groups_with_pools(resources)
    overhead = _daemonset_overhead(groups)
    placed: list[tuple[_Demand, tuple[Pool, ...]]] = []
    out: list[Finding] = []
    for group, cluster_pools in groups:
        if group.kind in ("DaemonSet", "Job", "CronJob", "Pod"):
            continue
        accepting = tuple(p for p in cluster_pools
                          if group.placement.selects(p.labels) and not group.placement.untolerated(p.taints))
        if not accepting:
            continue  # slm-k8s-pod-placement reports it
        if not any(_fits_a_node(group.requests, p, overhead.get(p.resource.urn + p.name, Requests()))
                   for p in accepting):
            out.append(Finding(
                f"{group.source}: one pod of {group.label} asks {_num(group.requests.gpus)} GPU, "
                f"{_num(group.requests.cpu_m)}m CPU, {_num(group.requests.memory_mib)}Mi memory, more than a node of "
                f"{_describe(accepting)} can allocate; lower the requests or use a larger VM size.", group.resource))
            continue
        replicas, origin = max_replicas(group.resource, resources)
        surge = rollout_surge(group.resource, replicas)
        placed.append((_Demand(group, replicas + surge, replicas, surge, origin), accepting))
    for target in sorted({a for _, a in placed}, key=lambda s: [p.display for p in s]):
        members = [d for d, a in placed if set(a) <= set(target)]
        out.extend(_over(target, members, overhead))
    return out


def _over(target: tuple[Pool, ...], members: Sequence[_Demand], overhead: Mapping[str, Requests]) -> list[Finding]:
    gpus, cpu, mem = _capacity(target, overhead)
    owner = target[0].resource if len(target) == 1 else (target[0].cluster or target[0].resource)
    out: list[Finding] = []
    checks = (("nvidia.com/gpu", gpus, lambda r: r.gpus, " GPU"), ("requests.cpu", cpu, lambda r: r.cpu_m, "m"),
              ("requests.memory", mem, lambda r: r.memory_mib, "Mi"))
    for key, capacity, of, unit in checks:
        need = sum(d.pods * of(d.group.requests) for d in members)
        if need <= capacity or not any(of(d.group.requests) for d in members):
            continue
        parts = "; ".join(d.text(of(d.group.requests), unit) for d in members if of(d.group.requests))
        out.append(Finding(
            f"{key}: found {_num(need)}{unit} needed on {_describe(target)} = {_num(capacity)}{unit} at most, by "
            f"{parts}; pods beyond it stay Pending and rollouts never finish. Fix: {ROLLOUT_FIX}.", owner))
        break  # the first resource that does not fit says it; the others follow from the same replicas
    return out
