"""System invariants through the REAL pack over gRPC, on the shipped stacks and on a broken variant.

A staging stack (Azure Managed Prometheus) whose NetworkPolicies admit only ``monitoring`` (what the
InferenceCluster did before issue 17) must fail the gate with a mandatory line naming the
ServiceMonitor, the workload and its NetworkPolicies; the shipped stack must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.serving_workloads import ServingWorkloads
from slmctl.gate import GateResult, format_result, run_gate
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack

STAGING = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.staging.yaml"
pytestmark = [pytest.mark.slow]


def _gate() -> GateResult:
    loaded = load_stack_file(STAGING)
    return run_gate(record_stack(loaded), environment=loaded.settings.tier, stack_file=STAGING)


def test_managed_monitoring_whose_scraper_is_refused_fails_naming_both_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ServingWorkloads, "_scraper_namespace", lambda self: self._args.monitoring_namespace)
    result = _gate()
    found = [v for v in result.mandatory if v.policy == "slm-reach-metrics-scraper"]
    assert [v.resource for v in found] == ["observability-sm-phi-4-mini"], format_result(result, "text")
    assert found[0].detail == (
        "observability-sm-phi-4-mini (kubernetes:azmonitoring.coreos.com/v1:ServiceMonitor): network: "
        "'observability-sm-phi-4-mini' is scraped by Azure Managed Prometheus (ama-metrics) from namespace "
        "'kube-system', but the NetworkPolicies guarding port 8000 of 'serving-phi-4-mini-deploy' "
        "('serving-phi-4-mini-np-deny', 'serving-phi-4-mini-np-gateway', 'serving-phi-4-mini-np-metrics') admit no "
        "traffic from it, so no metrics arrive (autoscaling and SLO alerts go blind); add an ingress rule from "
        "namespaceSelector kubernetes.io/metadata.name=kube-system and podSelector rsName=ama-metrics on port 8000.")
    assert result.exit_code == 1


def test_the_shipped_staging_stack_admits_ama_metrics() -> None:
    result = _gate()
    assert not [v for v in result.violations if v.policy.startswith(("slm-reach-", "slm-identity-", "slm-conflict-"))]
    assert result.exit_code == 0, format_result(result, "text")
