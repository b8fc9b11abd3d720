"""Rollouts that always finish, and GPU node agents that reach Spot nodes (issue 17, defects 1, 3, 15).

The component picks, per pool, a rolling update whose extra pod fits: surge when the pool has a free
slot for every workload that may roll at once, else replace one pod at a time. The shipped stacks'
numbers are checked by the policy gate (tests/gate/test_gate_stacks.py); here the decision itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.monitoring.helm_values import SPOT_TOLERATION, DcgmExporterValues
from components.serving_workloads import (
    REPLACE_ROLLOUT,
    SURGE_ROLLOUT,
    ServingWorkloadsArgs,
    pods_per_node,
    rollouts,
    workload_plan,
)
from policies.rules.catalog import VM_SKUS
from slmctl.loader import load_stack_file
from slmctl.recorder import Recording
from stacks.serving import workloads_args
from stacks.settings import EnvironmentSettings
from tests.inference.builders import build, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _args(settings: EnvironmentSettings) -> ServingWorkloadsArgs:
    """The platform's mapping; planning declares nothing, so no provider is needed."""
    return workloads_args(settings)


def _rollouts(settings: EnvironmentSettings) -> dict[str, Any]:
    args = _args(settings)
    plans = {n: workload_plan(args, n, d, onnx_image="registry-built/onnx-server")
             for n, d in settings.aks_deployments().items()}
    return rollouts(args.pools, plans)


def _strategy(recording: Recording, name: str) -> dict[str, Any]:
    deploy = next(r.inputs for r in recording.by_type("kubernetes:apps/v1:Deployment")
                  if r.inputs["metadata"]["name"] == name)
    return deploy["spec"]["strategy"]["rollingUpdate"]


def test_a_full_pool_replaces_one_pod_at_a_time() -> None:
    # dev: one model with max 1 replica on a one-node T4 pool; a surge pod would need a second GPU.
    dev = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml").settings
    assert _rollouts(dev) == {"phi-4-mini": REPLACE_ROLLOUT}
    # prod: 3 + 3 + 2 max replicas fill gpua100's 8 single-GPU nodes; no room for three surge pods.
    prod = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.prod.yaml").settings
    assert set(_rollouts(prod).values()) == {REPLACE_ROLLOUT}


def test_a_pool_with_a_free_slot_per_workload_keeps_zero_downtime_surge() -> None:
    roomy = make_settings("dev", cluster={"pools": {"gpu": {"max_count": 3}}},
                          deployments={"phi4": {"replicas": {"min": 0, "max": 2}}})
    assert _rollouts(roomy)["phi4"] == SURGE_ROLLOUT
    assert _strategy(build(roomy), "phi4") == {"maxSurge": 1, "maxUnavailable": 0}
    full = make_settings("dev", cluster={"pools": {"gpu": {"max_count": 2}}},
                         deployments={"phi4": {"replicas": {"min": 0, "max": 2}}})
    assert _strategy(build(full), "phi4") == {"maxSurge": 0, "maxUnavailable": 1}


def test_gpu_node_agents_tolerate_the_aks_spot_taint() -> None:
    recording = build(make_settings("dev", cluster={"pools": {"gpu": {"spot": True}}}))
    (plugin,) = [r.inputs for r in recording.by_type("kubernetes:helm.sh/v3:Release")]
    assert SPOT_TOLERATION in plugin["values"]["tolerations"]
    assert SPOT_TOLERATION in DcgmExporterValues().to_helm()["tolerations"]


def test_the_vllm_pod_share_leaves_one_pod_per_t4_node() -> None:
    settings = make_settings("dev")
    plan = workload_plan(_args(settings), "phi4", settings.aks_deployments()["phi4"], onnx_image=None)
    assert pods_per_node(plan.spec, VM_SKUS["Standard_NC4as_T4_v3"]) == 1
