"""Every shipped stack holds every system invariant (reachability, identity, conflicts).

The rules run directly on the recorded plan here (fast, one line per broken relation on failure); the
gate runs the same rules over gRPC in ``tests/gate/test_gate_stacks.py``. Before the issue-17 fixes
these failed on the shipped stacks: duplicate diagnostic settings (all Azure stacks), the AKS cluster
racing its identity and subnet grants (all), no deployer grant on the cluster and nobody on Managed
Grafana (all / staging, prod), NetworkPolicies refusing ama-metrics (staging, prod), the dev vault and
weights storage refusing the cluster (dev), and the private prod IoT Hub without an endpoint (prod).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pytest

from policies.pack import SPECS
from policies.rules.stack import Finding, StackResource
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from tests.stack_support import STACK_FILES

INVARIANTS = [s for s in SPECS if s.name.split("-")[1] in {"reach", "identity", "conflict"}]


@cache
def plan(name: str) -> tuple[StackResource, ...]:
    path = next(p for p in STACK_FILES if p.name == f"Pulumi.{name}.yaml")
    rec = record_stack(load_stack_file(path))
    return tuple(StackResource(r.type, r.name, r.urn, r.inputs, r.parent, tuple(r.dependencies),
                               {k: tuple(v) for k, v in r.property_dependencies.items()},
                               "::".join(r.provider.split("::")[:-1]) if r.provider else "")
                 for r in rec.registrations)


def test_the_invariants_are_mandatory_from_dev_up() -> None:
    assert len(INVARIANTS) == 12  # + slm-reach-deployer (where `pulumi up` runs reaches what it writes)
    assert {s.levels for s in INVARIANTS} == {"M/M/M"}


@pytest.mark.parametrize("stack", [p.name.split(".")[1] for p in STACK_FILES])
@pytest.mark.parametrize("spec", INVARIANTS, ids=lambda s: s.name)
def test_shipped_stack_holds_the_invariant(stack: str, spec: Any) -> None:
    rule: Callable[[Sequence[StackResource], dict[str, Any]], list[Finding]] = spec.stack_rule
    found = [f"{f.resource.name if f.resource else 'stack'}: {f.message}" for f in rule(plan(stack), {})]
    assert found == []
