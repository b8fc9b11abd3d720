"""Plan benchmark: wall time, peak memory and resource count per shipped stack, against the SDK floor.

The floor is the same number of trivial resources registered under the same mock monitor, so the
ratio isolates what our program adds (components, settings, Outputs) over Pulumi's own cost.
Target: ratio <= 1.5. It also times the policy gate on each recording (the pack started as a
subprocess and driven over the analyzer protocol, as ``slmctl gate`` does; target for prod: < 3 s).
This script prints; it never asserts time.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import pulumi
from pulumi_azure_native import resources

from slmctl.gate import run_gate
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan
from slmctl.recorder import record

STACKS = ("local", "dev", "staging", "prod")
REPEATS = 3


def measure(fn):  # type: ignore[no-untyped-def]
    """Best wall time of REPEATS runs, and peak traced memory of one."""
    best = float("inf")
    result = None
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak, result


def floor(count: int):  # type: ignore[no-untyped-def]
    class Box(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("slm:bench:Box", name, None, None)
            for i in range(count - 1):
                resources.ResourceGroup(f"rg{i}", location="swedencentral", tags={"i": str(i)},
                                        opts=pulumi.ResourceOptions(parent=self))
            self.register_outputs({})

    return lambda: record(lambda: Box("box"))


def main() -> None:
    """Print one row per stack."""
    root = Path(__file__).resolve().parent.parent
    print(f"{'stack':8} {'resources':>9} {'plan s':>8} {'peak MiB':>9} {'floor s':>8} {'ratio':>6} {'gate s':>7}")
    make_plan(load_stack_file(root / "stacks" / "Pulumi.dev.yaml"))  # warm imports once
    for name in STACKS:
        loaded = load_stack_file(root / "stacks" / f"Pulumi.{name}.yaml")
        seconds, peak, plan = measure(lambda loaded=loaded: make_plan(loaded))
        count = len(plan.recording.registrations)
        floor_s, _, _ = measure(floor(count))
        start = time.perf_counter()
        run_gate(plan.recording, environment=loaded.settings.tier, stack_file=loaded.path)
        gate_s = time.perf_counter() - start
        print(f"{name:8} {count:9d} {seconds:8.3f} {peak / 2**20:9.1f} {floor_s:8.3f} {seconds / floor_s:6.2f}"
              f" {gate_s:7.2f}")


if __name__ == "__main__":
    main()
