"""Alerts reach someone: the routing tree (checked by amtool), the in-cluster Secret, the Azure action groups."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_support import REPO_ROOT

from components.monitoring import alerting
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan
from slmctl.recorder import redact, secret_paths
from stacks.settings import EnvironmentSettings
from tests.monitoring.support import (
    STACK_NAMES,
    amtool,
    render_settings,
    rule_groups_for,
    settings_dict,
    stack_settings,
)

RECEIVERS = {
    "oncall": {"kind": "pagerduty", "routing_key_secret": "alertPagerDutyRoutingKey"},
    "team-mail": {"kind": "email", "to": ["ml@contoso.example"]},
    "team-chat": {"kind": "webhook", "url_secret": "slm-platform:alertWebhookUrl"},
}


def _settings(**monitoring: Any) -> EnvironmentSettings:
    return EnvironmentSettings.model_validate(settings_dict(monitoring=monitoring))


def _routes_test(config: Path, *labels: str) -> list[str]:
    done = subprocess.run([amtool(), "config", "routes", "test", f"--config.file={config}", *labels],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_alert_of_a_shipped_stack_routes_to_a_receiver(stack: str, tmp_path: Path) -> None:
    settings = stack_settings(stack)
    render_settings(settings, tmp_path)
    config = tmp_path / "alertmanager.yaml"
    checked = subprocess.run([amtool(), "check-config", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = yaml.safe_load(config.read_text())
    targets = {r["name"]: sum(len(v) for k, v in r.items() if k.endswith("_configs")) for r in doc["receivers"]}
    for group in rule_groups_for(settings):
        for rule in group.rules:
            if rule.alert:
                labels = [f"alertname={rule.alert}", *(f"{k}={v}" for k, v in rule.labels.items())]
                (receiver,) = _routes_test(config, *labels)
                assert receiver == alerting.severity_receiver(rule.labels["severity"]), rule.alert
                assert targets[receiver] >= 1, (rule.alert, receiver)


def test_severity_routing_and_the_watchdog(tmp_path: Path) -> None:
    settings = _settings(receivers=RECEIVERS, routes={"critical": ["oncall", "team-mail"], "warning": ["team-chat"]},
                         mode="azure-managed")
    render_settings(settings, tmp_path)
    config = tmp_path / "alertmanager.yaml"
    assert _routes_test(config, "severity=critical", "alertname=SlmModelServerDown") == ["sev-critical"]
    assert _routes_test(config, "severity=warning") == ["sev-warning"]
    assert _routes_test(config, "alertname=Watchdog", "severity=none") == ["silent"]
    assert _routes_test(config, "alertname=SomethingWithoutSeverity") == ["sev-warning"]  # never dropped
    doc = yaml.safe_load(config.read_text())
    critical = next(r for r in doc["receivers"] if r["name"] == "sev-critical")
    assert critical["pagerduty_configs"][0]["routing_key"].startswith("https://secret.invalid/")
    assert critical["email_configs"][0]["to"] == "ml@contoso.example"


def test_in_cluster_email_needs_a_relay() -> None:
    with pytest.raises(ValueError, match=r"monitoring\.smtp"):
        _settings(receivers={"m": RECEIVERS["team-mail"]}, routes={"critical": ["m"]})
    with pytest.raises(ValueError, match=r"monitoring\.routes\.warning: receiver 'nobody'"):
        _settings(receivers={"m": RECEIVERS["team-chat"]}, routes={"warning": ["nobody"]})


def _plan(stack: str) -> Any:
    return make_plan(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml")).recording


def test_in_cluster_config_is_a_secret_the_chart_mounts() -> None:
    rec = _plan("dev")
    (secret,) = [r for r in rec.by_type("kubernetes:core/v1:Secret") if r.name == "observability-alertmanager"]
    assert secret_paths(secret.inputs) == ["stringData"]
    routes = json.loads(secret.inputs["metadata"]["annotations"][alerting.ROUTES_ANNOTATION])
    assert routes == {"critical": ["webhook"], "warning": ["webhook"]}
    (release,) = [r for r in rec.by_type("kubernetes:helm.sh/v3:Release") if r.name == "observability-kps"]
    spec = redact(release.inputs)["values"]["alertmanager"]["alertmanagerSpec"]
    assert spec["useExistingSecret"] is True
    assert spec["configSecret"] == alerting.CONFIG_SECRET_NAME
    assert secret.urn in release.dependencies


def test_managed_rules_name_the_action_group_of_their_severity() -> None:
    rec = _plan("prod")
    groups = {r.name: r for r in rec.by_type("azure-native:monitor:ActionGroup")}
    assert set(groups) == {"observability-ag-critical", "observability-ag-warning"}
    critical = redact(groups["observability-ag-critical"].inputs)
    assert [e["emailAddress"] for e in critical["emailReceivers"]] == ["ml-platform@contoso.example"]
    assert [w["serviceUri"] for w in critical["webhookReceivers"]] == ["[secret]"]  # the PagerDuty key
    assert critical["location"] == "global"
    rule_groups = rec.by_type("azure-native:alertsmanagement:PrometheusRuleGroup")
    assert rule_groups
    for group in rule_groups:
        for rule in group.inputs["rules"]:
            if "alert" in rule:
                (action,) = rule["actions"]
                assert "actionGroupId" in action, (group.name, rule["alert"])
        if any("alert" in rule for rule in group.inputs["rules"]):  # Microsoft's recording-only groups alert nobody
            assert any(g.urn in group.dependencies for g in groups.values()), group.name
