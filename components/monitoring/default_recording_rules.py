"""Microsoft's default recording-rule groups for Azure Managed Prometheus (Linux node, Kubernetes, UX).

Enabling the metrics profile through ARM (``azureMonitorProfile.metrics.enabled``) does not create them;
the portal and Microsoft's ARM/Bicep/Terraform templates add them as ``prometheusRuleGroups`` named
``<prefix><cluster>``, scoped to the Azure Monitor workspace and the cluster. Without them the built-in
dashboards (Kubernetes / Compute Resources, Node Exporter, the AKS Insights views) stay empty.

The rules are data, copied verbatim from the template (``data/azure-default-recording-rules.json`` names
the repository, path and commit); ``MonitoringStack`` creates one group per entry, and the tests check the
rendered groups with ``promtool check rules`` and evaluate some of them with ``promtool test rules``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

DATA: Final = Path(__file__).resolve().parent / "data" / "azure-default-recording-rules.json"


@dataclass(frozen=True, kw_only=True)
class DefaultRule:
    """One recording rule as Microsoft ships it."""

    record: str
    expression: str
    labels: dict[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class DefaultGroup:
    """One of Microsoft's default groups (the name is ``name_prefix`` + the cluster's name)."""

    name_prefix: str
    description: str
    interval: str
    """ISO 8601, as the ARM template has it (``PT1M``)."""
    rules: tuple[DefaultRule, ...]

    def name(self, cluster_name: str) -> str:
        """The rule group's name for ``cluster_name`` (what the portal and the templates create)."""
        return f"{self.name_prefix}{cluster_name}"


@cache
def source() -> dict[str, str]:
    """Where the rules come from (repository, path, commit)."""
    return dict(json.loads(DATA.read_text(encoding="utf-8"))["source"])


@cache
def default_groups() -> tuple[DefaultGroup, ...]:
    """The Linux default groups, in the template's order."""
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    return tuple(DefaultGroup(
        name_prefix=g["name_prefix"], description=g["description"], interval=g["interval"],
        rules=tuple(DefaultRule(record=r["record"], expression=r["expression"], labels=r.get("labels"))
                    for r in g["rules"]))
        for g in doc["groups"])


def _prometheus_interval(iso: str) -> str:
    """``PT1M`` -> ``1m`` (the template's intervals are whole minutes)."""
    if not (iso.startswith("PT") and iso.endswith("M") and iso[2:-1].isdigit()):
        msg = f"interval {iso!r}: expected PT<minutes>M"
        raise ValueError(msg)
    return f"{iso[2:-1]}m"


def to_rule_file(cluster_name: str) -> dict[str, Any]:
    """The groups as a Prometheus rule file (what ``promtool check rules`` reads)."""
    groups: list[dict[str, Any]] = []
    for group in default_groups():
        rules: list[dict[str, Any]] = []
        for rule in group.rules:
            entry: dict[str, Any] = {"record": rule.record, "expr": rule.expression}
            if rule.labels:
                entry["labels"] = dict(rule.labels)
            rules.append(entry)
        groups.append({"name": group.name(cluster_name), "interval": _prometheus_interval(group.interval),
                       "rules": rules})
    return {"groups": groups}
