"""The rule model: what is generated from the settings, and its three renderings."""

from __future__ import annotations

import pytest

from components.monitoring.metrics import VLLM_DEPRECATED, known_series, metric_names_in
from components.monitoring.rules import (
    ALERT_SUMMARIES,
    AZURE_SEVERITY,
    RECORDED_SERIES,
    Rule,
    iso8601,
    to_azure_rule_group,
    to_prometheus_rule_spec,
    to_rule_file,
)
from policies.rules.catalog import SPOT_PRICE_FACTOR, VM_SKUS
from tests.monitoring.support import REPO_ROOT, cpu_only_settings, make_settings, rule_groups_for


def _group(name: str) -> dict[str, Rule]:
    groups = {g.name: g for g in rule_groups_for(make_settings())}
    return {r.name: r for r in groups[name].rules}


class TestGeneration:
    def test_one_group_per_aks_deployment_plus_gpu_and_none_for_foundry(self) -> None:
        names = [g.name for g in rule_groups_for(make_settings())]
        assert names == ["slm-serving-phi-ollama", "slm-serving-phi-onnx", "slm-serving-phi-vllm", "slm-gpu"]

    def test_vllm_thresholds_come_from_the_deployment_slo(self) -> None:
        rules = _group("slm-serving-phi-vllm")
        assert rules["SlmTtftP95AboveSlo"].expr.endswith("> 1.5")
        assert rules["SlmInterTokenLatencyP95AboveSlo"].expr.endswith("> 0.2")
        assert rules["SlmQueueBacklog"].expr.endswith("> 12")
        assert rules["SlmAbortRatioHigh"].expr.endswith("> 0.02")
        assert 'model_name="phi-vllm"' in rules["SlmTtftP95AboveSlo"].expr
        assert rules["SlmTtftP95AboveSlo"].labels == {"severity": "warning", "model_name": "phi-vllm"}

    def test_abort_ratio_is_zero_division_safe(self) -> None:
        assert "clamp_min(" in _group("slm-serving-phi-vllm")["SlmAbortRatioHigh"].expr

    def test_absent_rule_does_not_fire_when_scaled_to_zero(self) -> None:
        expr = _group("slm-serving-phi-vllm")["SlmModelServerAbsent"].expr
        assert expr.startswith('absent(vllm:num_requests_running{model_name="phi-vllm"})')
        assert 'kube_deployment_spec_replicas{deployment="phi-vllm"}) > 0' in expr

    def test_ollama_gets_only_kube_state_metrics_rules(self) -> None:
        rules = _group("slm-serving-phi-ollama")
        assert set(rules) == {"SlmModelServerDown", "SlmModelServerRestarting"}
        assert all(r.source == "kube-state-metrics" for r in rules.values())

    def test_onnx_server_gets_the_rules_its_metrics_allow(self) -> None:
        assert set(_group("slm-serving-phi-onnx")) == {
            "SlmQueueBacklog", "SlmModelServerAbsent", "SlmModelServerDown", "SlmModelServerRestarting",
            "model_name:generation_tokens_per_second:rate5m", "model_name:cost_usd_per_million_tokens:rate5m"}

    def test_cost_rule_writes_the_pool_price_in_with_the_spot_discount(self) -> None:
        vllm = _group("slm-serving-phi-vllm")["model_name:cost_usd_per_million_tokens:rate5m"]
        onnx = _group("slm-serving-phi-onnx")["model_name:cost_usd_per_million_tokens:rate5m"]
        assert vllm.expr.startswith(f"({VM_SKUS['Standard_NC4as_T4_v3'].usd_per_hour} * count by")
        spot = round(VM_SKUS["Standard_D8ds_v5"].usd_per_hour * SPOT_PRICE_FACTOR, 4)
        assert onnx.expr.startswith(f"({spot} * count by")

    def test_local_tier_has_no_cost_rule(self) -> None:
        settings = make_settings(tier="local", deployments={"phi": {"target": "vllm", "model": "phi-4-mini"}},
                                 cluster={})
        records = {r.record for g in rule_groups_for(settings) for r in g.rules if r.record}
        assert records == {"model_name:generation_tokens_per_second:rate5m"}

    def test_gpu_rules_only_with_gpus(self) -> None:
        assert "slm-gpu" not in [g.name for g in rule_groups_for(cpu_only_settings())]
        gpu = _group("slm-gpu")
        assert set(gpu) == {"SlmGpuXidError", "SlmGpuXidWarning", "SlmGpuTemperatureHigh", "SlmGpuRowRemapFailure",
                            "SlmGpuFramebufferFull"}
        assert gpu["SlmGpuTemperatureHigh"].for_ == "10m"
        assert gpu["SlmGpuTemperatureHigh"].expr.endswith("> 85")

    def test_every_alert_has_summary_description_severity_and_a_runbook_file(self) -> None:
        for group in rule_groups_for(make_settings()):
            for rule in group.rules:
                if rule.alert is None:
                    continue
                assert rule.labels["severity"] in AZURE_SEVERITY
                assert {"summary", "description", "runbook_url"} <= set(rule.annotations)
                assert rule.annotations["runbook_url"] == f"docs/runbooks/{rule.alert}.md"
                assert (REPO_ROOT / rule.annotations["runbook_url"]).is_file(), rule.alert

    def test_every_runbook_belongs_to_an_alert(self) -> None:
        runbooks = {p.stem for p in (REPO_ROOT / "docs" / "runbooks").glob("*.md")} - {"README"}
        assert runbooks == set(ALERT_SUMMARIES)

    def test_runbook_base_url_is_configurable(self) -> None:
        settings = make_settings(monitoring={"runbook_base_url": "https://github.com/contoso/slm/blob/main/docs/runbooks/"})
        rule = next(r for g in rule_groups_for(settings) for r in g.rules if r.alert)
        assert rule.annotations["runbook_url"].startswith("https://github.com/contoso/slm/blob/main/docs/runbooks/Slm")


class TestMetricNames:
    def test_every_rule_reads_only_known_metrics_of_its_source(self) -> None:
        for settings in (make_settings(), cpu_only_settings()):
            for group in rule_groups_for(settings):
                for rule in group.rules:
                    used = metric_names_in(rule.expr)
                    assert used, rule.expr
                    # kube-state-metrics may be read alongside any engine (the absent rule's guard).
                    allowed = known_series(rule.source, "kube-state-metrics")
                    assert used <= allowed, (rule.name, sorted(used - allowed))
                    assert not used & VLLM_DEPRECATED

    def test_recorded_series_names_follow_the_level_metric_operation_convention(self) -> None:
        for name in RECORDED_SERIES:
            assert name.count(":") == 2
            assert name.startswith("model_name:")


class TestRenderings:
    def test_rule_file_and_prometheus_rule_spec_hold_the_same_rules(self) -> None:
        for group in rule_groups_for(make_settings()):
            spec = to_prometheus_rule_spec(group)
            assert spec == to_rule_file([group])
            (rendered,) = spec["groups"]
            assert rendered["name"] == group.name
            assert [r.get("alert") or r.get("record") for r in rendered["rules"]] == [r.name for r in group.rules]

    def test_azure_rule_groups_match_the_prometheus_rules_one_to_one(self) -> None:
        for group in rule_groups_for(make_settings()):
            azure = to_azure_rule_group(group, name_prefix="slmdev")
            assert azure.rule_group_name == f"slmdev-{group.name}"
            assert azure.interval == "PT1M"
            assert len(azure.rules) == len(group.rules)
            for rule, az in zip(group.rules, azure.rules, strict=True):
                assert az["expression"] == rule.expr
                if rule.alert:
                    assert az["alert"] == rule.alert
                    assert az["severity"] == AZURE_SEVERITY[rule.labels["severity"]]
                    assert az["annotations"] == dict(rule.annotations)
                    assert az.get("for_") == (iso8601(rule.for_) if rule.for_ else None)
                else:
                    assert az["record"] == rule.record
                    assert "for_" not in az

    @pytest.mark.parametrize(("duration", "iso"), [("5m", "PT5M"), ("10m", "PT10M"), ("1h", "PT1H"),
                                                   ("90m", "PT1H30M"), ("1m", "PT1M")])
    def test_iso8601_durations(self, duration: str, iso: str) -> None:
        assert iso8601(duration) == iso


class TestErrors:
    def test_a_rule_is_an_alert_or_a_record(self) -> None:
        with pytest.raises(ValueError, match="either an alert or a record"):
            Rule(expr="up", kind="down", source="kube-state-metrics", alert="A", record="b:c:d",
                 labels={"severity": "warning"})

    def test_an_alert_needs_a_severity(self) -> None:
        with pytest.raises(ValueError, match="needs a severity label"):
            Rule(expr="up", kind="down", source="kube-state-metrics", alert="A")

    def test_duration_must_be_minutes_or_hours(self) -> None:
        with pytest.raises(ValueError, match="whole minutes or hours"):
            iso8601("30s")
