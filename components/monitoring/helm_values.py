"""Typed Helm values for the third-party charts the in-cluster monitoring stack installs.

Values are built from small frozen dataclasses (what we decide) into the chart's nested dicts (what
the chart reads), so secure defaults sit next to the field they govern and tests can assert them:
Grafana's admin credentials come from an existing Secret (``admin.existingSecret``; the password
never appears in the values), anonymous access is off, every UI Service is ClusterIP with no
Ingress, the Grafana sidecar loads dashboards from labelled ConfigMaps, and Prometheus selects every
ServiceMonitor / PodMonitor / PrometheusRule in the cluster (not only those with the chart's labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

KUBE_PROMETHEUS_STACK_REPO: Final = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART: Final = "kube-prometheus-stack"
KUBE_PROMETHEUS_STACK_VERSION: Final = "81.4.3"
"""Pinned chart (appVersion v0.88.1, Grafana chart 10.5.15; kubeVersion >=1.25). 81.4.5 was pinned before
and never existed (81.4.3 -> 81.5.0). Bump deliberately: the version must be in policies/data/helm-index.json
(scripts/refresh_helm_index.py), and CRDs are only installed on first install by Helm."""
KUBE_PROMETHEUS_STACK_RELEASE: Final = "kps"
"""Release name (fixed, so Service names are predictable: ``kps-grafana``, ``kps-prometheus``)."""

DCGM_EXPORTER_REPO: Final = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_CHART: Final = "dcgm-exporter"
DCGM_EXPORTER_VERSION: Final = "4.7.1"
"""Pinned chart (DCGM 4.4.2 / exporter 4.7.1). Re-check against ``helm search repo -l`` when bumping."""
DCGM_EXPORTER_RELEASE: Final = "dcgm-exporter"
DCGM_EXPORTER_SERVICE_LABELS: Final = {"app.kubernetes.io/name": "dcgm-exporter"}
DCGM_EXPORTER_PORT_NAME: Final = "metrics"

GRAFANA_ADMIN_USER_KEY: Final = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY: Final = "admin-password"  # noqa: S105 (a Secret key name, not a secret)
DASHBOARD_LABEL: Final = "grafana_dashboard"
DASHBOARD_LABEL_VALUE: Final = "1"

SYSTEM_POOL_TOLERATION: Final = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
"""Monitoring runs on the system pool (tainted CriticalAddonsOnly): user pools may be GPU-only."""
GPU_TOLERATION: Final = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
SPOT_TOLERATION: Final = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                          "effect": "NoSchedule"}
"""AKS taints every Spot node ``kubernetes.azure.com/scalesetpriority=spot:NoSchedule`` by itself."""
GPU_NODE_AGENT_TOLERATIONS: Final = (
    GPU_TOLERATION,
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    SPOT_TOLERATION,
)
"""What a node agent every GPU node needs (device plugin, DCGM exporter) tolerates: our GPU taint, the
NVIDIA one, and AKS's Spot taint (dev's only GPU pool is Spot; policy slm-gpu-node-agents)."""
GPU_NODE_LABEL: Final = ("accelerator", "nvidia")
"""The node label ``InferenceCluster`` puts on every GPU pool."""


@dataclass(frozen=True, kw_only=True)
class KubePrometheusStackValues:
    """What we configure on kube-prometheus-stack."""

    grafana_admin_secret: str
    """Name of the Secret (same namespace) holding ``admin-user`` / ``admin-password``."""
    scrape_interval_seconds: int = 30
    retention_days: int = 30
    grafana_enabled: bool = True
    storage_gib: int | None = 50
    """Default: a 50 GiB PersistentVolumeClaim for Prometheus. ``None``: emptyDir (local clusters)."""
    storage_class: str | None = "managed-csi"
    """Default: AKS's Azure Disk CSI class. ``None``: the cluster's default class."""
    tolerations: tuple[dict[str, str], ...] = field(default_factory=lambda: (SYSTEM_POOL_TOLERATION,))
    alertmanager_config_secret: str | None = None
    """A Secret (key ``alertmanager.yaml``) holding the Alertmanager configuration: receivers and
    routes with their webhook URLs and keys stay out of the values. Default: the chart's own config,
    whose only receiver is ``null`` (alerts reach nobody)."""

    def to_helm(self) -> dict[str, Any]:
        """The chart's values."""
        tolerations = [dict(t) for t in self.tolerations]
        interval = f"{self.scrape_interval_seconds}s"
        prometheus_spec: dict[str, Any] = {
            "scrapeInterval": interval,
            "evaluationInterval": interval,
            "retention": f"{self.retention_days}d",
            # Select every monitor and rule in the cluster, not only those labelled for this release.
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
            "probeSelectorNilUsesHelmValues": False,
            "tolerations": tolerations,
        }
        if self.storage_gib is not None:
            claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                     "resources": {"requests": {"storage": f"{self.storage_gib}Gi"}}}
            if self.storage_class:
                claim["storageClassName"] = self.storage_class
            prometheus_spec["storageSpec"] = {"volumeClaimTemplate": {"spec": claim}}
        return {
            "fullnameOverride": KUBE_PROMETHEUS_STACK_RELEASE,
            "crds": {"enabled": True},
            "prometheus": {"service": {"type": "ClusterIP"}, "ingress": {"enabled": False},
                           "prometheusSpec": prometheus_spec},
            "alertmanager": {"service": {"type": "ClusterIP"}, "ingress": {"enabled": False},
                             "alertmanagerSpec": self._alertmanager_spec(tolerations)},
            "prometheusOperator": {"tolerations": tolerations,
                                   "admissionWebhooks": {"patch": {"tolerations": tolerations}}},
            "kube-state-metrics": {"tolerations": tolerations},
            "grafana": self._grafana(tolerations),
        }

    def _alertmanager_spec(self, tolerations: list[dict[str, str]]) -> dict[str, Any]:
        spec: dict[str, Any] = {"tolerations": tolerations}
        if self.alertmanager_config_secret is not None:
            spec |= {"useExistingSecret": True, "configSecret": self.alertmanager_config_secret}
        return spec

    def _grafana(self, tolerations: list[dict[str, str]]) -> dict[str, Any]:
        if not self.grafana_enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "fullnameOverride": f"{KUBE_PROMETHEUS_STACK_RELEASE}-grafana",
            # The password lives only in the Secret; never ``adminPassword`` in values.
            "admin": {"existingSecret": self.grafana_admin_secret, "userKey": GRAFANA_ADMIN_USER_KEY,
                      "passwordKey": GRAFANA_ADMIN_PASSWORD_KEY},
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "persistence": {"enabled": False},
            "tolerations": tolerations,
            "grafana.ini": {
                "auth.anonymous": {"enabled": False},
                "users": {"allow_sign_up": False},
                "analytics": {"reporting_enabled": False, "check_for_updates": False},
            },
            "sidecar": {
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": DASHBOARD_LABEL_VALUE},
                "datasources": {"enabled": True},
            },
        }


@dataclass(frozen=True, kw_only=True)
class DcgmExporterValues:
    """What we configure on NVIDIA's dcgm-exporter chart (a DaemonSet on GPU nodes)."""

    aks_gpu_nodes_only: bool = True
    """Default: schedule only on GPU nodes (``accelerator=nvidia``, set by ``InferenceCluster`` on GPU
    pools). ``False`` on local clusters, where no pool carries that label."""

    def to_helm(self) -> dict[str, Any]:
        """The chart's values; its own ServiceMonitor is off (we create the right API group)."""
        values: dict[str, Any] = {
            "serviceMonitor": {"enabled": False},
            "service": {"type": "ClusterIP"},
            "tolerations": [dict(t) for t in GPU_NODE_AGENT_TOLERATIONS],
        }
        if self.aks_gpu_nodes_only:
            values["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": GPU_NODE_LABEL[0], "operator": "In", "values": [GPU_NODE_LABEL[1]]}]}]}}}
        return values
