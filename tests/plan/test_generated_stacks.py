"""The benchmark's generated stacks are real stack files: the loader and the settings accept them, and they
grow only in the dimension they claim (benchmarks/plan_bench.py reports plan and gate against them)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import generated_stacks
from slmctl.loader import load_stack_file

BASE = load_stack_file(generated_stacks.BASE).settings


def test_vllm_stacks_load_and_fit_their_pools(tmp_path: Path) -> None:
    n = 9
    loaded = load_stack_file(generated_stacks.write(generated_stacks.vllm_settings(n), tmp_path))
    s = loaded.settings
    assert loaded.stack == "prod"
    vllm = {k: d for k, d in s.deployments.items() if d.target == "vllm"}
    assert len(vllm) == n
    pods: dict[str, int] = {}
    for d in vllm.values():
        pods[d.pool] = pods.get(d.pool, 0) + d.replicas.max
    assert pods == {"gpua100": 8, "gpua101": 8, "gpua102": 2}  # each pool holds its pods at max_count
    assert all(s.cluster.pools[p].max_count >= count for p, count in pods.items())
    assert s.edge == BASE.edge  # nothing else changed
    assert {k for k, d in s.deployments.items() if d.target != "vllm"} == {
        k for k, d in BASE.deployments.items() if d.target != "vllm"}


def test_fleet_stacks_load_with_one_fleet_per_site(tmp_path: Path) -> None:
    n = 4
    s = load_stack_file(generated_stacks.write(generated_stacks.fleet_settings(n), tmp_path)).settings
    assert len(s.edge.fleets) == n
    assert len({tuple(f.device_selector.items()) for f in s.edge.fleets.values()}) == n
    assert s.deployments == BASE.deployments
