"""slm-ops-alert-routing (pure rule): in-cluster alerts need a mounted Alertmanager route for their severity."""

from __future__ import annotations

import json
from typing import Any

from policies.rules.alerting import ROUTES_ANNOTATION, alert_routing
from policies.rules.stack import StackResource

RUNBOOK = "https://github.com/contoso/slm/blob/main/docs/runbooks/SlmModelServerDown.md"


def _rule(severity: str = "critical", runbook: str = RUNBOOK) -> StackResource:
    rule = {"alert": "SlmModelServerDown", "expr": "up == 0", "labels": {"severity": severity},
            "annotations": {"runbook_url": runbook}}
    return StackResource("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "rules", "urn:rules",
                         {"spec": {"groups": [{"name": "g", "rules": [rule]}]}})


def _config(routes: dict[str, list[str]], *, mounted: bool = True) -> list[StackResource]:
    values: dict[str, Any] = {"alertmanager": {"alertmanagerSpec": {"useExistingSecret": mounted,
                                                                     "configSecret": "alertmanager-slm"}}}
    return [
        StackResource("kubernetes:helm.sh/v3:Release", "kps", "urn:kps", {"values": values}),
        StackResource("kubernetes:core/v1:Secret", "am", "urn:am", {"metadata": {
            "name": "alertmanager-slm", "annotations": {ROUTES_ANNOTATION: json.dumps(routes)}}}),
    ]


def test_routed_severity_with_https_runbook_passes() -> None:
    assert alert_routing([_rule(), *_config({"critical": ["pagerduty"]})], {}) == []


def test_the_charts_null_receiver_is_reported() -> None:
    (finding,) = alert_routing([_rule()], {})
    assert "no Alertmanager configuration mounted" in finding.message
    (finding,) = alert_routing([_rule(), *_config({"critical": ["email"]}, mounted=False)], {})
    assert "no Alertmanager configuration mounted" in finding.message


def test_a_severity_without_receivers_is_reported() -> None:
    (finding,) = alert_routing([_rule("warning"), *_config({"critical": ["email"], "warning": []})], {})
    assert "labels.severity: found 'warning'" in finding.message


def test_a_repository_relative_runbook_is_reported() -> None:
    (finding,) = alert_routing([_rule(runbook="docs/runbooks/SlmModelServerDown.md"),
                                *_config({"critical": ["email"]})], {})
    assert "runbook_url: found 'docs/runbooks/SlmModelServerDown.md'" in finding.message
