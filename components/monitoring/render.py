"""Write the stack's monitoring artefacts to disk so independent tools can check them.

``render_monitoring(args, out_dir)`` writes (from the same ``MonitoringStackArgs`` the component
deploys), under ``out_dir`` (``build/<stack>/monitoring``):

* ``rules/<group>.yaml`` — Prometheus rule files (``promtool check rules``);
* ``tests/<group>.test.yaml`` — promtool unit tests (``promtool test rules``);
* ``dashboards/<uid>.json`` — Grafana dashboards (import into Managed Grafana, or the sidecar's
  ConfigMaps in-cluster carry the same JSON);
* ``alertmanager.yaml`` — the Alertmanager configuration of the receivers and severity routes, with
  ``https://secret.invalid/<key>`` placeholders (``amtool check-config`` / ``amtool config routes test``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.monitoring.alerting import alertmanager_config, placeholders
from components.monitoring.dashboards import build_dashboards
from components.monitoring.promtool import rule_test_file
from components.monitoring.rules import build_rule_groups, to_rule_file
from components.monitoring_stack import MonitoringStackArgs


def _plain(value: Any) -> Any:
    """Integral floats become ints (YAML readers and promtool prefer ``2`` to ``2.0``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def dump_yaml(data: Any) -> str:
    """YAML as we ship it: block style, insertion order, wide lines, ints for integral floats."""
    return yaml.safe_dump(_plain(data), sort_keys=False, width=120, allow_unicode=True)


def render_monitoring(args: MonitoringStackArgs, out_dir: Path) -> list[Path]:
    """Write rule files, promtool tests and dashboards for ``args``; return the paths written."""
    written: list[Path] = []
    rules_dir, tests_dir, dash_dir = out_dir / "rules", out_dir / "tests", out_dir / "dashboards"
    for directory in (rules_dir, tests_dir, dash_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for group in build_rule_groups(args.models, gpu_telemetry=args.gpu_telemetry,
                                   runbook_base_url=args.runbook_base_url):
        rule_path = rules_dir / f"{group.name}.yaml"
        rule_path.write_text(dump_yaml(to_rule_file([group])), encoding="utf-8")
        test_path = tests_dir / f"{group.name}.test.yaml"
        test_path.write_text(dump_yaml(rule_test_file(group, f"../rules/{rule_path.name}")),
                             encoding="utf-8")
        written += [rule_path, test_path]
    for uid, board in build_dashboards(gpu=args.gpu_telemetry).items():
        path = dash_dir / f"{uid}.json"
        path.write_text(json.dumps(board, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    if args.alerting.routes:
        path = out_dir / "alertmanager.yaml"
        path.write_text(dump_yaml(alertmanager_config(args.alerting, placeholders(args.alerting), mode=args.mode)),
                        encoding="utf-8")
        written.append(path)
    return written
