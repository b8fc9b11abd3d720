"""Alerts reach someone (OPS-04 stack invariant): every alert rule routes to a receiver.

Managed path: every alert of an ``alertsmanagement:PrometheusRuleGroup`` names an action group
(``rules[*].actions``, or the group's ``actions``) and the group depends on an enabled
``monitor:ActionGroup`` of the stack with at least one e-mail or webhook receiver.

In-cluster path: every alert of a ``PrometheusRule`` has a severity that the Alertmanager
configuration routes to a receiver. The configuration itself is a Secret (it holds webhook URLs and
routing keys); it carries its route summary, without secrets, in the ``slm.io/alert-routes``
annotation, and a kube-prometheus-stack Release must mount it (``alertmanager.alertmanagerSpec.
configSecret``). Without that, the chart's only receiver is ``null``.

Both: every ``runbook_url`` is an absolute https URL (a link in a notification must open).
"""

# ruff: noqa: ARG001
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from policies.rules.stack import Finding, StackResource
from policies.rules.tokens import (
    ACTION_GROUP,
    HELM_RELEASE,
    K8S_SECRET,
    PROMETHEUS_RULE,
    PROMETHEUS_RULE_GROUP,
)
from policies.rules.wire import get, is_list, is_map, show

ROUTES_ANNOTATION: Final = "slm.io/alert-routes"
"""Mirrors components.monitoring.alerting.ROUTES_ANNOTATION (the pack imports nothing from components)."""


def _list(value: Any) -> list[Any]:
    return list(value) if is_list(value) else []


def _runbook(rule: Any, where: str, r: StackResource) -> list[Finding]:
    url = get(rule, "annotations.runbook_url")
    if isinstance(url, str) and url.startswith("https://"):
        return []
    return [Finding(f"{where}.annotations.runbook_url: found {show(url)}; use an absolute https URL "
                    "(settings monitoring.runbook_base_url) so the notification's link opens.", r)]


def _receivers(group: StackResource) -> int:
    if get(group.props, "enabled") is False:
        return 0
    return len(_list(get(group.props, "emailReceivers"))) + len(_list(get(group.props, "webhookReceivers")))


def _managed(r: StackResource, groups: Mapping[str, StackResource]) -> list[Finding]:
    out: list[Finding] = []
    linked = [groups[u] for u in (*r.property_dependencies.get("rules", ()), *r.property_dependencies.get(
        "actions", ()), *r.dependencies) if u in groups]
    reachable = any(_receivers(g) for g in linked)
    group_actions = _list(get(r.props, "actions"))
    for i, rule in enumerate(_list(get(r.props, "rules"))):
        if not is_map(rule) or "alert" not in rule:
            continue
        where = f"rules[{i}] ({show(rule['alert'])})"
        actions = _list(rule.get("actions")) or group_actions
        if not any(is_map(a) and "actionGroupId" in a for a in actions):
            out.append(Finding(f"{where}.actions: found none; name the action group of its severity "
                               "(settings monitoring.routes) so the alert reaches a receiver.", r))
        elif not reachable:
            out.append(Finding(f"{where}.actions: found no ActionGroup of this stack with an enabled e-mail or "
                               "webhook receiver; add receivers to the action group it names.", r))
        out.extend(_runbook(rule, where, r))
    return out


def _in_cluster_routes(resources: Sequence[StackResource]) -> dict[str, list[str]] | None:
    """The severity routes of the Secret a kube-prometheus-stack Release mounts, else None."""
    mounted = {str(get(r.props, "values.alertmanager.alertmanagerSpec.configSecret") or "")
               for r in resources if r.type == HELM_RELEASE
               and get(r.props, "values.alertmanager.alertmanagerSpec.useExistingSecret") is True}
    for r in resources:
        if r.type == K8S_SECRET and str(get(r.props, "metadata.name") or "") in mounted:
            annotations = get(r.props, "metadata.annotations")
            raw = annotations.get(ROUTES_ANNOTATION) if is_map(annotations) else None  # a dotted key
            try:
                routes = json.loads(raw) if isinstance(raw, str) else None
            except ValueError:
                routes = None
            if isinstance(routes, dict):
                return {str(k): [str(x) for x in v] for k, v in routes.items() if isinstance(v, list)}
    return None


def _in_cluster(r: StackResource, routes: Mapping[str, list[str]] | None) -> list[Finding]:
    out: list[Finding] = []
    for gi, group in enumerate(_list(get(r.props, "spec.groups"))):
        for i, rule in enumerate(_list(get(group, "rules"))):
            if not is_map(rule) or "alert" not in rule:
                continue
            where = f"spec.groups[{gi}].rules[{i}] ({show(rule['alert'])})"
            severity = get(rule, "labels.severity")
            if routes is None:
                out.append(Finding(f"{where}: found no Alertmanager configuration mounted by the "
                                   "kube-prometheus-stack release (its default receiver is 'null'); set "
                                   "monitoring.receivers and monitoring.routes.", r))
            elif not routes.get(str(severity)):
                out.append(Finding(f"{where}.labels.severity: found {show(severity)}, which the Alertmanager "
                                   f"configuration routes to no receiver; add monitoring.routes.{severity}.", r))
            out.extend(_runbook(rule, where, r))
    return out


def alert_routing(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """OPS-04: every alert rule of the stack routes to a receiver, with an absolute runbook link."""
    groups = {r.urn: r for r in resources if r.type == ACTION_GROUP}
    routes = _in_cluster_routes(resources)
    out: list[Finding] = []
    for r in resources:
        if r.type == PROMETHEUS_RULE_GROUP:
            out.extend(_managed(r, groups))
        elif r.type == PROMETHEUS_RULE:
            out.extend(_in_cluster(r, routes))
    return out
