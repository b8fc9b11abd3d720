"""Models served on a team's existing AKS cluster, and their monitoring, with the team's own config.

Nothing here imports ``stacks/`` or knows our stack files. The program validates its own model specs and
deployments with the domain types (``components.domain``), reaches the cluster through the kubeconfig it
is given, runs the deployments with ``ServingWorkloads`` (the cluster already runs KEDA and an ingress
controller: AKS add-ons), and monitors them with ``MonitoringStack`` from the workloads it created.
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import TypeAdapter

from components.domain import AksDeployment, ModelSpec
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
from components.serving_workloads import ClusterAddons, ServingWorkloads, ServingWorkloadsArgs

config = pulumi.Config()
models = {k: ModelSpec.model_validate(v) for k, v in config.require_object("models").items()}
deployments: dict[str, Any] = {k: TypeAdapter(AksDeployment).validate_python(v)
                               for k, v in config.require_object("deployments").items()}
mode = MonitoringMode(config.get("mode") or MonitoringMode.IN_CLUSTER.value)
azure_config: dict[str, str] | None = config.get_object("azure")

cluster = k8s.Provider("existing-aks", kubeconfig=config.require_secret("kubeconfig"))

serving = ServingWorkloads("serving", ServingWorkloadsArgs(
    deployments=deployments, models=models, gateway_hostname=config.require("gatewayHostname"),
    kube_provider=cluster, addons=ClusterAddons.PROVIDED,
    engine_api_key=config.require_secret("engineApiKey"),
    gateway_ingress_class=config.get("ingressClass") or "webapprouting.kubernetes.azure.com",
    gateway_namespace=config.get("ingressNamespace") or "app-routing-system",
))

azure = None if azure_config is None else AzureMonitoringTarget(
    resource_group_name=azure_config["resourceGroupName"], location=azure_config["location"],
    subscription_id=azure_config["subscriptionId"], name_prefix=config.get("namePrefix") or "team",
    cluster_id=azure_config["clusterId"], cluster_name=azure_config["clusterName"],
    log_analytics_workspace_id=azure_config["logAnalyticsWorkspaceId"],
)

monitoring = MonitoringStack(
    "monitoring",
    MonitoringStackArgs(
        models={name: MonitoredModel(engine=dep.target, slo=ServingSlo(**dep.slo.model_dump()))
                for name, dep in deployments.items()},
        workloads={name: MonitoredWorkload(namespace=w.namespace, port=w.port, pod_labels=w.pod_labels,
                                           served_model_name=w.served_model_name, metrics_path=w.metrics_path)
                   for name, w in serving.workloads.items()},
        mode=mode,
        azure=azure,
        gpu_telemetry=any(w.gpu for w in serving.workloads.values()),
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

pulumi.export("endpoints", {name: f"https://{config.require('gatewayHostname')}/{name}/v1" for name in deployments})
pulumi.export("grafana_endpoint", monitoring.grafana_endpoint)
pulumi.export("prometheus_rule_names", monitoring.prometheus_rule_names)
