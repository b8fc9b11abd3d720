"""Scheduling and capacity invariants (policies/rules/scheduling.py) on plan fragments.

Each rule gets a violating fragment and its compliant twin, built as the pack receives them: wire
properties (camelCase, numbers as floats), a Kubernetes provider that depends on the cluster, pools
that name the cluster in ``resourceName``.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies.rules import plan_graph, scheduling
from policies.rules.aks import AGENT_POOL, CLUSTER
from policies.rules.catalog import VM_SKUS
from policies.rules.stack import SCALED_OBJECT, StackResource

SPOT = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}
GPU = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
NV = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PROVIDER_URN = "urn:pulumi:dev::p::pulumi:providers:kubernetes::k8s"


def res(type_: str, name: str, props: dict[str, Any], **kw: Any) -> StackResource:
    return StackResource(type_, name, f"urn:pulumi:dev::p::{type_}::{name}", props, **kw)


def cluster() -> StackResource:
    return res(CLUSTER, "aks", {"resourceName": "slmdev-aks", "agentPoolProfiles": [{
        "name": "system", "mode": "System", "vmSize": "Standard_D4ds_v5", "count": 1.0,
        "nodeTaints": ["CriticalAddonsOnly=true:NoSchedule"]}]})


def provider(aks: StackResource) -> StackResource:
    return StackResource("pulumi:providers:kubernetes", "k8s", PROVIDER_URN, {}, dependencies=(aks.urn,))


def gpu_pool(name: str = "gput4", *, spot: bool = True, max_count: float = 1.0,
             vm_size: str = "Standard_NC4as_T4_v3") -> StackResource:
    props: dict[str, Any] = {
        "agentPoolName": name, "resourceName": "slmdev-aks", "mode": "User", "vmSize": vm_size,
        "enableAutoScaling": True, "minCount": 0.0, "maxCount": max_count, "nodeTaints": ["sku=gpu:NoSchedule"],
        "nodeLabels": {"accelerator": "nvidia", "sku": "gpu"}, "scaleSetPriority": "Spot" if spot else "Regular"}
    return res(AGENT_POOL, f"serving-{name}", props)


def device_plugin(tolerations: list[dict[str, Any]]) -> StackResource:
    return res(RELEASE, "serving-nvidia-device-plugin", {
        "chart": "nvidia-device-plugin", "version": "0.17.1",
        "values": {"nodeSelector": {"accelerator": "nvidia"}, "affinity": None, "tolerations": tolerations}},
        provider=PROVIDER_URN)


def dcgm(tolerations: list[dict[str, Any]]) -> StackResource:
    return res(RELEASE, "observability-dcgm", {"chart": "dcgm-exporter", "version": "4.7.1", "values": {
        "tolerations": tolerations, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "accelerator", "operator": "In", "values": ["nvidia"]}]}]}}}}}, provider=PROVIDER_URN)


def vllm(name: str, *, pool: str = "gput4", tolerations: list[dict[str, Any]] | None = None,
         replicas: float = 1.0, surge: Any = 1.0, unavailable: Any = 0.0, cpu: str = "2400m",
         memory: str = "16Gi") -> StackResource:
    resources = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}
    return res(DEPLOYMENT, f"serving-{name}-deploy", {
        "metadata": {"name": name, "namespace": f"slm-{name}"},
        "spec": {"replicas": replicas,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge,
                                                                         "maxUnavailable": unavailable}},
                 "template": {"spec": {
                     "nodeSelector": {"kubernetes.azure.com/agentpool": pool},
                     "tolerations": [GPU, NV, SPOT] if tolerations is None else tolerations,
                     "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0",
                                     "resources": {"requests": resources, "limits": resources}}]}}}},
        provider=PROVIDER_URN)


def scaler(name: str, max_replicas: float) -> StackResource:
    return res(SCALED_OBJECT, f"serving-{name}-scaler", {"metadata": {"name": name, "namespace": f"slm-{name}"},
                                                         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name},
                                                                  "minReplicaCount": 0.0,
                                                                  "maxReplicaCount": max_replicas}})


def base(*extra: StackResource, spot: bool = True, max_count: float = 1.0) -> list[StackResource]:
    aks = cluster()
    return [aks, provider(aks), gpu_pool(spot=spot, max_count=max_count),
            device_plugin([GPU, NV, SPOT]), dcgm([GPU, NV, SPOT]), *extra]


# --------------------------------------------------------------------------- plan_graph


class TestPlanGraph:
    def test_aks_adds_the_spot_taint_and_labels(self) -> None:
        pool = next(p for p in plan_graph.pools(base()) if p.name == "gput4")
        assert [str(t) for t in pool.taints] == ["sku=gpu:NoSchedule",
                                                 "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
        assert pool.labels["kubernetes.azure.com/agentpool"] == "gput4"
        assert pool.labels["kubernetes.azure.com/scalesetpriority"] == "spot"
        assert pool.max_nodes == 1
        assert pool.cluster is not None
        assert pool.cluster.name == "aks"

    @pytest.mark.parametrize(("toleration", "ok"), [
        (SPOT, True), ({"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True), ({**SPOT, "value": "regular"}, False),
        ({**SPOT, "effect": "NoExecute"}, False), (GPU, False)])
    def test_toleration_semantics(self, toleration: dict[str, Any], ok: bool) -> None:
        assert plan_graph.tolerates([toleration], plan_graph.Taint.parse(plan_graph.SPOT_TAINT)) is ok

    def test_quantities_and_allocatable(self) -> None:
        assert plan_graph.cpu_millicores("2400m") == 2400
        assert plan_graph.cpu_millicores("2.5") == 2500
        assert plan_graph.memory_mib("16Gi") == 16384
        assert plan_graph.memory_mib("512Mi") == 512
        # NC4as_T4_v3: 4 vCPU - 140m kube-reserved; 28 GiB - min(20 x 250 + 50, 25 %) - 100 Mi eviction.
        assert plan_graph.node_allocatable(VM_SKUS["Standard_NC4as_T4_v3"], 250) == (3860.0, 28672 - 5050 - 100)

    def test_resources_of_another_provider_have_no_known_pools(self) -> None:
        aks = cluster()
        edge = StackResource("pulumi:providers:kubernetes", "edge", "urn:edge", {})
        w = vllm("x")
        w = StackResource(w.type, w.name, w.urn, w.props, provider="urn:edge")
        assert plan_graph.pools_of(w, [aks, edge, gpu_pool(), w]) is None

    def test_max_replicas_come_from_the_scaled_object_and_surge_from_the_strategy(self) -> None:
        w = vllm("m", replicas=0.0)
        assert plan_graph.max_replicas(w, [w, scaler("m", 3.0)]) == (3, "serving-m-scaler maxReplicaCount")
        assert plan_graph.max_replicas(w, [w]) == (0, "spec.replicas")
        assert plan_graph.rollout_surge(w, 3) == 1
        assert plan_graph.rollout_surge(vllm("n", surge="25%"), 3) == 1  # rounded up, as Kubernetes does
        assert plan_graph.rollout_surge(vllm("n", surge=0.0, unavailable=1.0), 3) == 0


# --------------------------------------------------------------------------- the rules


class TestGpuNodeAgents:
    def test_device_plugin_and_dcgm_without_the_spot_toleration_fail(self) -> None:
        aks = cluster()
        plan = [aks, provider(aks), gpu_pool(), device_plugin([GPU, NV]), dcgm([GPU])]
        findings = scheduling.gpu_node_agents(plan, {})
        assert [(f.resource.name if f.resource else None, f.message) for f in findings] == [
            ("serving-nvidia-device-plugin",
             "values.tolerations: serving-nvidia-device-plugin (device-plugin) does not tolerate "
             "'kubernetes.azure.com/scalesetpriority=spot:NoSchedule' of GPU pool 'gput4' (serving-gput4) (AKS adds "
             "it to every Spot pool), so nvidia.com/gpu is never advertised there and GPU pods stay Pending; add "
             "{key: kubernetes.azure.com/scalesetpriority, operator: Equal, value: spot, effect: NoSchedule}."),
            ("observability-dcgm",
             "values.tolerations: observability-dcgm (dcgm-exporter) does not tolerate "
             "'kubernetes.azure.com/scalesetpriority=spot:NoSchedule' of GPU pool 'gput4' (serving-gput4) (AKS adds "
             "it to every Spot pool), so that pool's GPUs go unmonitored; add {key: "
             "kubernetes.azure.com/scalesetpriority, operator: Equal, value: spot, effect: NoSchedule}.")]

    def test_agents_that_tolerate_every_gpu_pool_pass(self) -> None:
        assert scheduling.gpu_node_agents(base(), {}) == []

    def test_the_charts_default_nfd_affinity_selects_no_aks_managed_gpu_node(self) -> None:
        plugin = device_plugin([GPU, NV, SPOT])
        values = {k: v for k, v in plugin.props["values"].items() if k not in ("affinity", "nodeSelector")}
        plugin = StackResource(plugin.type, plugin.name, plugin.urn, {**plugin.props, "values": values},
                               provider=PROVIDER_URN)
        aks = cluster()
        findings = scheduling.gpu_node_agents([aks, provider(aks), gpu_pool(), plugin], {})
        assert len(findings) == 1
        assert findings[0].message.startswith("values: serving-nvidia-device-plugin (device-plugin) does not select "
                                              "GPU pool 'gput4' (serving-gput4)")

    def test_a_gpu_pool_without_a_device_plugin_fails_on_the_pool(self) -> None:
        aks = cluster()
        findings = scheduling.gpu_node_agents([aks, provider(aks), gpu_pool(spot=False)], {})
        assert [f.resource.name for f in findings if f.resource] == ["serving-gput4"]
        assert "has no NVIDIA device plugin" in findings[0].message


class TestPodPlacement:
    def test_a_pod_on_a_spot_pool_must_tolerate_the_aks_taint(self) -> None:
        findings = scheduling.pod_placement(base(vllm("phi", tolerations=[GPU, NV])), {})
        assert [f.message for f in findings] == [
            "spec.template.spec: serving-phi-deploy selects only pools whose taints it does not tolerate: pool "
            "'gput4' (serving-gput4) has 'kubernetes.azure.com/scalesetpriority=spot:NoSchedule' (AKS adds it to "
            "every Spot pool); add {key: kubernetes.azure.com/scalesetpriority, operator: Equal, value: spot, "
            "effect: NoSchedule}."]
        assert scheduling.pod_placement(base(vllm("phi")), {}) == []

    def test_a_selector_that_matches_no_pool_fails(self) -> None:
        findings = scheduling.pod_placement(base(vllm("phi", pool="gpua100")), {})
        assert len(findings) == 1
        assert findings[0].message.startswith(
            "spec.template.spec: serving-phi-deploy selects no node pool (kubernetes.azure.com/agentpool=gpua100); "
            "the cluster aks has 'system', 'gput4'.")

    def test_local_plans_without_a_cluster_are_not_judged(self) -> None:
        assert scheduling.pod_placement([vllm("phi", pool="nowhere")], {}) == []


class TestPoolCapacity:
    def test_two_models_on_a_one_node_t4_pool_fail_naming_pool_and_both(self) -> None:
        plan = base(vllm("phi", surge=0.0, unavailable=1.0), vllm("qwen", surge=0.0, unavailable=1.0))
        findings = scheduling.pool_capacity(plan, {})
        assert [f.resource.name for f in findings if f.resource] == ["serving-gput4"]
        assert findings[0].message == (
            "nvidia.com/gpu: found 2 GPU needed on pool 'gput4' (serving-gput4) Standard_NC4as_T4_v3 x max 1 = 1 GPU "
            "at most, by serving-phi-deploy 1 GPU (max 1 from spec.replicas x 1 GPU); serving-qwen-deploy 1 GPU (max "
            "1 from spec.replicas x 1 GPU); pods beyond it stay Pending and rollouts never finish. Fix: raise the "
            "pool's max_count, lower the deployments' max replicas, or roll with maxSurge 0 / maxUnavailable 1.")

    def test_the_rolling_update_surge_counts(self) -> None:
        surging = scheduling.pool_capacity(base(vllm("phi")), {})
        assert len(surging) == 1
        assert "serving-phi-deploy 2 GPU (max 1 from spec.replicas + surge 1 x 1 GPU)" in surging[0].message
        assert scheduling.pool_capacity(base(vllm("phi", surge=0.0, unavailable=1.0)), {}) == []

    def test_max_replicas_come_from_keda(self) -> None:
        plan = base(vllm("phi", replicas=0.0, surge=0.0, unavailable=1.0), scaler("phi", 3.0), max_count=2.0)
        findings = scheduling.pool_capacity(plan, {})
        assert "max 3 from serving-phi-scaler maxReplicaCount" in findings[0].message
        assert scheduling.pool_capacity(
            base(vllm("phi", replicas=0.0, surge=0.0, unavailable=1.0), scaler("phi", 2.0), max_count=2.0), {}) == []

    def test_cpu_and_memory_are_checked_against_allocatable(self) -> None:
        fat = vllm("phi", surge=0.0, unavailable=1.0, memory="27Gi")  # 27 GiB > 23,522 MiB allocatable
        findings = scheduling.pool_capacity(base(fat), {})
        assert len(findings) == 1
        assert findings[0].message.startswith("spec.template.spec: one pod of serving-phi-deploy asks 1 GPU, 2400m "
                                              "CPU, 27648Mi memory, more than a node of pool 'gput4'")
