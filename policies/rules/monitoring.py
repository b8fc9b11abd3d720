"""Monitoring and operations rules (catalogue group F: OPS-02, OPS-04; stack parts in ``stack``)."""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from policies.rules.tokens import CLUSTER, GRAFANA, HELM_RELEASE_TYPES, LOG_WORKSPACE, SERVICE
from policies.rules.wire import (
    Props,
    applies_to,
    get,
    is_list,
    is_map,
    mapping,
    metadata_labels,
    namespace_of,
    number,
    show,
)

MONITORING_APPS: Final = ("grafana", "prometheus", "alertmanager")


@applies_to(CLUSTER, LOG_WORKSPACE)
def container_insights(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """OPS-02: cluster metrics collection on; workspace retention long enough."""
    if type_ == CLUSTER:
        if get(props, "addonProfiles.omsagent.enabled") is True or \
                get(props, "azureMonitorProfile.metrics.enabled") is True:
            return []
        return ["azureMonitorProfile.metrics.enabled: found unset and no omsagent add-on; enable managed "
                "Prometheus (or Container Insights)."]
    if type_ == LOG_WORKSPACE:
        minimum = number(cfg.get("minRetentionDays", 30)) or 30
        days = number(get(props, "retentionInDays"))
        if days is None or days < minimum:
            return [f"retentionInDays: found {show(days)}; keep at least {show(minimum)} days here."]
    return []


def _is_monitoring_service(props: Props, namespace: str) -> bool:
    name = str(get(props, "metadata.name") or "").lower()
    labels = " ".join(metadata_labels(props).values()).lower()
    return namespace_of(props) == namespace or any(a in name or a in labels for a in MONITORING_APPS)


def _plain_passwords(values: Any, path: str = "values") -> list[str]:
    found: list[str] = []
    if is_map(values):
        for k in values:
            v = values[k]
            key = str(k).lower()
            # `passwordKey: admin-password` names a key inside a Secret; only a value is a password.
            names_a_reference = key.endswith(("key", "secret", "secretname", "ref", "file", "path"))
            if "password" in key and not names_a_reference and isinstance(v, str) and v:
                found.append(f"{path}.{k}")
            else:
                found.extend(_plain_passwords(v, f"{path}.{k}"))
    elif is_list(values):
        for i, v in enumerate(values):
            found.extend(_plain_passwords(v, f"{path}[{i}]"))
    return found


@applies_to(SERVICE, GRAFANA, HELM_RELEASE_TYPES)
def private_dashboards(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """OPS-04: Grafana/Prometheus/Alertmanager never public; no literal admin passwords."""
    namespace = str(cfg.get("monitoringNamespace", "monitoring"))
    if type_ == SERVICE and _is_monitoring_service(props, namespace):
        kind = get(props, "spec.type")
        internal = str(mapping(get(props, "metadata.annotations")).get(
            "service.beta.kubernetes.io/azure-load-balancer-internal")).lower() == "true"
        if kind == "NodePort" or (kind == "LoadBalancer" and not internal):
            return [f"spec.type: found {show(kind)} for a monitoring service; keep Grafana, Prometheus and "
                    "Alertmanager on ClusterIP behind the authenticated gateway."]
    if type_ == GRAFANA:
        out = []
        if cfg.get("requirePrivateGrafana", False) and get(props, "properties.publicNetworkAccess") != "Disabled":
            out.append(f"properties.publicNetworkAccess: found {show(get(props, 'properties.publicNetworkAccess'))}; "
                       "set 'Disabled' and use a private endpoint.")
        if cfg.get("forbidApiKeys", False) and get(props, "properties.apiKey") != "Disabled":
            out.append(f"properties.apiKey: found {show(get(props, 'properties.apiKey'))}; set 'Disabled'.")
        return out
    if type_ in HELM_RELEASE_TYPES:
        return [f"{p}: found a literal password (not shown); reference an existing Secret "
                "(e.g. grafana.admin.existingSecret)." for p in _plain_passwords(get(props, "values"))]
    return []
