"""Microsoft's default recording-rule groups on the managed-Prometheus path: created, scoped, and valid.

Enabling managed Prometheus through ARM creates no recording rules, so without these groups the built-in
dashboards have no series. The rules are Microsoft's, copied with their source; promtool parses all of
them and evaluates two on known input series.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from components.monitoring.default_recording_rules import default_groups, source, to_rule_file
from slmctl.recorder import Recording
from tests.monitoring.support import promtool
from tests.monitoring.test_monitoring_stack import managed_prod  # noqa: F401 (the shared module fixture)

CLUSTER_ID = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"


def test_the_rules_name_their_upstream_source() -> None:
    src = source()
    assert src["repository"] == "github.com/Azure/prometheus-collector"
    assert src["path"] == "AddonArmTemplate/FullAzureMonitorMetricsProfile.json"
    assert re.fullmatch(r"[0-9a-f]{40}", src["commit"])
    assert [(g.name_prefix, len(g.rules)) for g in default_groups()] == [
        ("NodeRecordingRulesRuleGroup-", 11), ("KubernetesRecordingRulesRuleGroup-", 19),
        ("UXRecordingRulesRuleGroup - ", 18)]


def test_managed_prometheus_gets_each_default_group_scoped_to_workspace_and_cluster(
        managed_prod: Recording) -> None:  # noqa: F811 (the fixture)
    groups = {r.inputs["ruleGroupName"]: r for r in managed_prod.by_type(RULE_GROUP)}
    (workspace,) = managed_prod.by_type("azure-native:monitor:AzureMonitorWorkspace")
    for group in default_groups():
        name = group.name("slmdev-aks")
        assert name in groups, f"{name} is not created; the dashboards that read it stay empty"
        wire = groups[name].inputs
        assert wire["clusterName"] == "slmdev-aks"
        assert wire["interval"] == "PT1M"
        assert wire["enabled"] is True
        assert len(wire["scopes"]) == 2
        assert wire["scopes"][1] == CLUSTER_ID
        assert workspace.urn in groups[name].property_dependencies.get("scopes", [])  # the workspace's id
        assert [(r["record"], r["expression"], r.get("labels")) for r in wire["rules"]] == [
            (r.record, r.expression, r.labels) for r in group.rules]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "azure-default-recording-rules.yaml"
    path.write_text(yaml.safe_dump(to_rule_file("slmdev-aks"), sort_keys=False), encoding="utf-8")
    return path


def test_promtool_accepts_every_default_rule(tmp_path: Path) -> None:
    path = _write(tmp_path)
    result = subprocess.run([promtool(), "check", "rules", path.name], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 48 rules found" in result.stdout


def test_promtool_evaluates_node_recording_rules_on_known_series(tmp_path: Path) -> None:
    _write(tmp_path)
    node = 'job="node",instance="n1"'
    tests = {"rule_files": ["azure-default-recording-rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'node_cpu_seconds_total{{{node},cpu="0",mode="idle"}}', "values": "0+60x10"},
            {"series": f'node_cpu_seconds_total{{{node},cpu="1",mode="idle"}}', "values": "0+60x10"},
            {"series": f'node_memory_MemAvailable_bytes{{{node}}}', "values": "4096x10"},
            {"series": f'node_memory_MemTotal_bytes{{{node}}}', "values": "16384x10"},
        ],
        "promql_expr_test": [
            {"expr": "instance:node_num_cpu:sum", "eval_time": "5m",
             "exp_samples": [{"labels": f'instance:node_num_cpu:sum{{{node}}}', "value": 2}]},
            {"expr": "instance:node_memory_utilisation:ratio", "eval_time": "5m",
             "exp_samples": [{"labels": f'instance:node_memory_utilisation:ratio{{{node}}}', "value": 0.75}]},
        ],
    }]}
    (tmp_path / "default.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool(), "test", "rules", "default.test.yaml"], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
