"""Monitoring for models a team already serves on its own AKS cluster, with its own config.

Nothing here imports ``stacks/`` or knows our stack files: the program states what it monitors (each
model's engine, namespace, port and metrics path) and where alerts go, reaches the cluster through the
kubeconfig it is given, and passes everything to ``MonitoringStack`` as plain Args.
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring.spec import (
    AlertReceiver,
    AlertRouting,
    MonitoredModel,
    MonitoredWorkload,
    MonitoringMode,
    ReceiverKind,
    ServingSlo,
)
from components.monitoring_stack import AzureMonitoringTarget, MonitoringStack, MonitoringStackArgs

config = pulumi.Config()
models: dict[str, dict[str, Any]] = config.require_object("models")
mode = MonitoringMode(config.get("mode") or MonitoringMode.IN_CLUSTER.value)
azure_config: dict[str, str] | None = config.get_object("azure")

cluster = k8s.Provider("existing-aks", kubeconfig=config.require_secret("kubeconfig"))

azure = None if azure_config is None else AzureMonitoringTarget(
    resource_group_name=azure_config["resourceGroupName"], location=azure_config["location"],
    subscription_id=azure_config["subscriptionId"], name_prefix=config.get("namePrefix") or "team",
    cluster_id=azure_config["clusterId"], cluster_name=azure_config["clusterName"],
    log_analytics_workspace_id=azure_config["logAnalyticsWorkspaceId"],
)

monitoring = MonitoringStack(
    "monitoring",
    MonitoringStackArgs(
        models={name: MonitoredModel(engine=m["engine"], slo=ServingSlo(**m.get("slo", {})))
                for name, m in models.items()},
        workloads={name: MonitoredWorkload(
            namespace=m["namespace"], port=int(m["port"]), metrics_path=m.get("metricsPath"),
            served_model_name=name, pod_labels={"app.kubernetes.io/instance": name})
            for name, m in models.items()},
        mode=mode,
        azure=azure,
        gpu_telemetry=any(m["engine"] == "vllm" for m in models.values()),
        gpu_nodes_labelled=config.get_bool("gpuNodesLabelled") or False,
        alerting=AlertRouting(receivers={"team": AlertReceiver(kind=ReceiverKind.WEBHOOK,
                                                               secret="webhook")},  # noqa: S106 (a key name)
                              routes={"critical": ("team",), "warning": ("team",)}),
        alert_secrets={"webhook": config.require_secret("alertWebhookUrl")},
        grafana_admin_password=config.get_secret("grafanaAdminPassword"),
        runbook_base_url=config.get("runbookBaseUrl"),
        tags={"owner": config.get("owner") or "unknown"},
    ),
    opts=pulumi.ResourceOptions(providers={"kubernetes": cluster}),
)

pulumi.export("grafana_endpoint", monitoring.grafana_endpoint)
pulumi.export("prometheus_rule_names", monitoring.prometheus_rule_names)
