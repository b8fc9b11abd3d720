"""How the gate scales with the number of resources: record N ConfigMaps and gate them under prod levels.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/gate_scale_bench.py [N ...]`` (default 1,000 and 10,000).
Prints the record and gate seconds and the findings; it asserts nothing about time. Before issue 12.11
the gate submitted every Analyze call at once and 10,000 resources ended in gRPC CANCELLED.
"""

from __future__ import annotations

import sys
import time

import pulumi_kubernetes as k8s

from slmctl.gate import run_gate
from slmctl.recorder import record


def main(sizes: list[int]) -> None:
    for n in sizes:
        def program(n: int = n) -> None:
            for i in range(n):
                k8s.core.v1.ConfigMap(f"cm-{i}", metadata={"name": f"cm-{i}", "namespace": "inference"},
                                      data={"k": "v" * 200})

        start = time.perf_counter()
        recording = record(program, stack="prod")
        recorded = time.perf_counter() - start
        start = time.perf_counter()
        result = run_gate(recording, environment="prod")
        gated = time.perf_counter() - start
        print(f"{n:>6} resources: record {recorded:6.1f}s  gate {gated:6.1f}s  "
              f"({gated / n * 1000:.1f} ms/resource), {len(result.violations)} findings")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
