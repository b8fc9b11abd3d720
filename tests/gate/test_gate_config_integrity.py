"""Issue 12.9: the policy config cannot quietly switch the gate off, and every deviation is printed.

A prod config that set everything advisory, disabled a mandatory policy, or exempted ``.*`` with an
11-character reason used to pass. Now, in staging and prod, lowering a mandatory policy and any
regex exemption are refused (exit 2); every difference from the generated levels is listed in the
report; an exemption can be tied to its type and parent component, so a namespace that merely shares
the exempted name does not inherit it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from markdown_it import MarkdownIt

from policies.pack import environment_config
from slmctl.gate import GateConfigError, format_result, run_gate
from slmctl.recorder import Recording, record


def _blob() -> None:
    from pulumi_azure_native import storage

    storage.StorageAccount("st", account_name="st", resource_group_name="rg", kind="StorageV2",
                           sku={"name": "Standard_ZRS"}, allow_blob_public_access=True, allow_shared_key_access=False,
                           public_network_access="Disabled", enable_https_traffic_only=True,
                           minimum_tls_version="TLS1_2", tags={"environment": "prod", "owner": "o", "costCenter": "c",
                                                               "workload": "w"})


@pytest.fixture(scope="module")
def blob() -> Recording:
    return record(_blob, stack="prod")


def _write(tmp_path: Path, env: str, change: dict[str, Any]) -> Path:
    config = change if "all" in change else {**environment_config(env), **change}
    path = tmp_path / f"{env}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("change", [
    {"all": "advisory"},
    {"slm-storage-no-public-blob": "disabled"},
    {"slm-storage-no-public-blob": "advisory"},
    {"slm-storage-no-public-blob": {"enforcementLevel": "advisory"}},
    {"all": "disabled"},
], ids=["all-advisory", "disable-one", "downgrade-one", "downgrade-object", "all-disabled"])
@pytest.mark.parametrize("env", ["prod", "staging"])
def test_lowering_a_mandatory_policy_is_refused(tmp_path: Path, blob: Recording, env: str,
                                                change: dict[str, Any]) -> None:
    with pytest.raises(GateConfigError, match=r"slm-storage-no-public-blob: enforcementLevel '(advisory|disabled)' "
                                              f"lowers a mandatory {env} policy"):
        run_gate(blob, environment=env, config_path=_write(tmp_path, env, change))


@pytest.mark.parametrize("pattern", [".*", ".+", "s.*", "[a-z]+", "st|other", "(st)"])
def test_a_regex_exemption_is_refused_in_prod(tmp_path: Path, blob: Recording, pattern: str) -> None:
    change = {"slm-storage-no-public-blob": {"enforcementLevel": "mandatory", "exempt": [
        {"pattern": pattern, "reason": "needs it for now, ok"}]}}
    with pytest.raises(GateConfigError, match=r"slm-storage-no-public-blob.exempt\[0\].pattern: .* is a pattern"):
        run_gate(blob, environment="prod", config_path=_write(tmp_path, "prod", change))


def test_an_exact_exemption_passes_and_every_deviation_is_printed(tmp_path: Path, blob: Recording) -> None:
    change = {"slm-storage-no-public-blob": {"enforcementLevel": "mandatory", "exempt": [
        {"pattern": "st", "reason": "public sample bucket, ticket SEC-7"}]},
              "slm-gpu-pool-autoscaling": "mandatory",
              "slm-gpu-pool-node-cap": {"enforcementLevel": "mandatory", "maxGpuNodes": 100}}
    result = run_gate(blob, environment="prod", config_path=_write(tmp_path, "prod", change))
    assert not [v for v in result.violations if v.policy == "slm-storage-no-public-blob"]
    assert [e.resource for e in result.exemptions] == ["st"]
    assert 'slm-gpu-pool-node-cap.maxGpuNodes: 100 (generated: 8)' in result.deviations
    assert "slm-gpu-pool-autoscaling: enforcementLevel mandatory (generated: advisory)" in result.deviations
    assert any(d.startswith("slm-storage-no-public-blob.exempt: [") for d in result.deviations)
    text = format_result(result, "text")
    assert "config deviations from the generated prod levels (3):" in text
    assert "maxGpuNodes: 100 (generated: 8)" in MarkdownIt("commonmark").render(format_result(result, "markdown"))
    assert json.loads(format_result(result, "json"))["configDeviations"] == result.deviations


def test_the_shipped_config_has_no_deviation(blob: Recording) -> None:
    assert run_gate(blob).deviations == []


def test_dev_may_lower_levels_but_the_report_shows_it(tmp_path: Path) -> None:
    result = run_gate(record(_blob, stack="dev"), environment="dev",
                      config_path=_write(tmp_path, "dev", {"slm-storage-no-public-blob": "advisory"}))
    assert {v.level for v in result.violations if v.policy == "slm-storage-no-public-blob"} == {"advisory"}
    assert result.deviations == ["slm-storage-no-public-blob: enforcementLevel advisory (generated: mandatory)"]


class _Imposter(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("slm:edge:EdgeDevice", name)
        k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": "inference", "labels": {
            "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/enforce-version": "v1.33"}},
            opts=pulumi.ResourceOptions(parent=self))


class _Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("slm:monitoring:MonitoringStack", name)
        k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": "monitoring", "labels": {
            "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/enforce-version": "v1.33"}},
            opts=pulumi.ResourceOptions(parent=self))


def test_a_namespace_named_like_the_exempted_one_does_not_inherit_it() -> None:
    imposter = run_gate(record(lambda: _Imposter("observability"), stack="prod"))
    assert [v.resource for v in imposter.mandatory if v.policy == "slm-k8s-namespace"] == ["observability-ns"]
    assert imposter.exemptions == []
    real = run_gate(record(lambda: _Monitoring("observability"), stack="prod"))
    assert not [v for v in real.violations if v.policy == "slm-k8s-namespace"]
    assert [(e.policy, e.resource) for e in real.exemptions] == [("slm-k8s-namespace", "observability-ns")]
