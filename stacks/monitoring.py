"""Our stack file -> ``MonitoringStackArgs``: the tier decisions the component does not make.

``MonitoringStack`` knows models, workloads, a mode and receivers; this module derives them from an
``EnvironmentSettings`` (which deployments run on the cluster, their SLOs and node prices, whether the
stack runs GPUs, Grafana's network exposure in prod, Prometheus storage on Azure). ``stacks/platform.py``
adds the ids of the resources built before it; ``slmctl render`` uses the same args without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from components.domain import (
    ENGINES,
    AksDeployment,
    EmailReceiver,
    WebhookReceiver,
    secret_config_key,
)
from components.domain.catalogue import SPOT_PRICE_FACTOR, VM_SKUS
from components.monitoring.spec import (
    AlertReceiver,
    AlertRouting,
    GpuDriver,
    MonitoredModel,
    MonitoredWorkload,
    MonitoringMode,
    ReceiverKind,
    ServingSlo,
    SmtpRelay,
)
from components.monitoring_stack import AzureMonitoringTarget, MonitoringStackArgs
from stacks.settings import EnvironmentSettings

if TYPE_CHECKING:
    import pulumi
    import pulumi_kubernetes as k8s

    from components.serving_workloads import ServingWorkload

PROMETHEUS_STORAGE_GIB = 50
"""In-cluster Prometheus on AKS: a 50 GiB ``managed-csi`` volume (laptops keep an emptyDir)."""


def has_gpu(settings: EnvironmentSettings) -> bool:
    """Whether the stack runs GPUs: a GPU pool, or a deployment of a CUDA-only engine (vLLM)."""
    return any(pool.is_gpu for pool in settings.cluster.pools.values()) or any(
        ENGINES[dep.target].gpu_only for dep in settings.aks_deployments().values()
    )


def node_usd_per_hour(settings: EnvironmentSettings, dep: AksDeployment) -> float | None:
    """List price of one node of the deployment's pool (Spot discounted), or None without a pool."""
    if dep.pool is None or dep.pool not in settings.cluster.pools:
        return None
    pool = settings.cluster.pools[dep.pool]
    price = VM_SKUS[pool.vm_size].usd_per_hour
    return round(price * SPOT_PRICE_FACTOR, 4) if pool.spot else price


def monitored_models(settings: EnvironmentSettings) -> dict[str, MonitoredModel]:
    """Every deployment that runs on the cluster, with its SLO and node price."""
    return {name: MonitoredModel(engine=dep.target, slo=ServingSlo(**dep.slo.model_dump()),
                                 node_usd_per_hour=node_usd_per_hour(settings, dep))
            for name, dep in sorted(settings.aks_deployments().items())}


def alert_routing(settings: EnvironmentSettings) -> AlertRouting:
    """The settings' receivers and routes; secrets are named by their ``namespace:key`` config key."""
    mon = settings.monitoring
    receivers: dict[str, AlertReceiver] = {}
    for name, r in mon.receivers.items():
        if isinstance(r, EmailReceiver):
            receivers[name] = AlertReceiver(kind=ReceiverKind.EMAIL, to=tuple(r.to))
        elif isinstance(r, WebhookReceiver):
            receivers[name] = AlertReceiver(kind=ReceiverKind.WEBHOOK, secret=secret_config_key(r.url_secret))
        else:
            receivers[name] = AlertReceiver(kind=ReceiverKind.PAGERDUTY,
                                            secret=secret_config_key(r.routing_key_secret))
    smtp = None if mon.smtp is None else SmtpRelay(
        smarthost=mon.smtp.smarthost, sender=mon.smtp.sender, username=mon.smtp.username,
        password_secret=secret_config_key(mon.smtp.password_secret) if mon.smtp.password_secret else None)
    return AlertRouting(receivers=receivers, routes={sev: tuple(names) for sev, names in mon.routes.items()},
                        smtp=smtp)


def monitored_workloads(workloads: Mapping[str, ServingWorkload]) -> dict[str, MonitoredWorkload]:
    """The cluster's serving workloads as scrape targets."""
    return {key: MonitoredWorkload(namespace=w.namespace, port=w.port, pod_labels=w.pod_labels,
                                   served_model_name=w.served_model_name, metrics_path=w.metrics_path)
            for key, w in workloads.items()}


def monitoring_args(
    settings: EnvironmentSettings,
    *,
    azure: AzureMonitoringTarget | None = None,
    workloads: Mapping[str, ServingWorkload] | None = None,
    kube_provider: k8s.Provider | None = None,
    grafana_admin_password: pulumi.Input[str] | None = None,
    alert_secrets: Mapping[str, pulumi.Input[str]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> MonitoringStackArgs:
    """The component's args for ``settings``; ``slmctl render`` calls it with only ``settings``."""
    on_azure = settings.uses_azure
    mon = settings.monitoring
    return MonitoringStackArgs(
        models=monitored_models(settings),
        workloads=monitored_workloads(workloads or {}),
        mode=MonitoringMode(mon.mode),
        azure=azure,
        gpu_telemetry=has_gpu(settings),
        gpu_driver=GpuDriver(settings.cluster.gpu_driver),
        gpu_nodes_labelled=on_azure,
        alerting=alert_routing(settings),
        alert_secrets=dict(alert_secrets or {}),
        runbook_base_url=mon.runbook_base_url,
        kube_provider=kube_provider,
        scrape_interval_seconds=mon.scrape_interval_seconds,
        retention_days=mon.retention_days,
        prometheus_storage_class="managed-csi" if on_azure else None,
        prometheus_storage_gib=PROMETHEUS_STORAGE_GIB if on_azure else None,
        grafana_enabled=mon.grafana_enabled,
        grafana_admin_password=grafana_admin_password,
        tags={**settings.azure_tags(), **(tags or {})},
    )


def azure_target(
    settings: EnvironmentSettings,
    *,
    resource_group_name: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    cluster_id: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    log_analytics_workspace_id: pulumi.Input[str],
    azure_monitor_workspace_id: pulumi.Input[str] | None,
    private_endpoint_subnet_id: pulumi.Input[str] | None,
    private_dns_zone_ids: Mapping[str, pulumi.Input[str]],
) -> AzureMonitoringTarget:
    """Where the stack's Azure side goes; prod keeps Managed Grafana private and zone-redundant."""
    prod = settings.tier == "prod"
    return AzureMonitoringTarget(
        resource_group_name=resource_group_name, location=settings.location, subscription_id=subscription_id,
        name_prefix=settings.name_prefix, cluster_id=cluster_id, cluster_name=cluster_name,
        log_analytics_workspace_id=log_analytics_workspace_id,
        azure_monitor_workspace_id=azure_monitor_workspace_id,
        grafana_public_network_access_enabled=not prod, grafana_zone_redundancy_enabled=prod,
        grafana_admin_group_ids=settings.grafana_admin_groups(),
        grafana_viewer_group_ids=tuple(str(g) for g in settings.monitoring.grafana_viewer_group_object_ids),
        private_endpoint_subnet_id=private_endpoint_subnet_id, private_dns_zone_ids=private_dns_zone_ids,
    )
